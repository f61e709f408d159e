/**
 * What every bench scenario shares: the row it reports, the stack it runs against, and the small
 * statistics helpers. A scenario file (bench/serverless.ts, bench/chunks.ts, …) imports from here,
 * never from bench/run.ts, which runs the bench when imported.
 */
import type { Ingress } from "@restatedev/restate-sdk-clients";
import type { Job } from "../services/index.js";
import { JOB_SERVICE } from "../services/types.js";
import type { FakeOpenAI } from "../test/helpers/fake-openai.js";
import type { TestEndpoint, TestRestate } from "../test/helpers/restate.js";
import type { ToolServer } from "../test/helpers/tool-server.js";
import type { Anchors } from "./anchors.js";

/** One line of bench/RESULTS.md, as a scenario reports it (run.ts adds median, min and max). */
export interface RowInput {
  scenario: string;
  unit: string;
  samples: number[];
  baseline: string;
  ratio: number | null;
  goal: string;
  met: boolean | null;
  note?: string;
}

export interface Row extends RowInput {
  median: number;
  min: number;
  max: number;
}

/** The shared stack every scenario runs against: one restate-server, endpoint, fake LLM and tool server. */
export interface BenchStack {
  restate: TestRestate;
  fake: FakeOpenAI;
  tools: ToolServer;
  endpoint: TestEndpoint;
  ingress: Ingress;
  /** Runs per scenario (BENCH_RUNS); fewer for the long ones. */
  runs: number;
  quick: boolean;
  /** The repository root (the dir bench/ is in). */
  repo: string;
  /** Raw Restate on the same server (bench/anchors.ts). */
  anchors: Anchors;
}

/**
 * A group of rows run together. `id` and `title` are what `BENCH_ONLY=<regex>` is matched against,
 * e.g. `BENCH_ONLY='^(5|6)'` or `BENCH_ONLY=anchor`.
 */
export interface Scenario {
  id: string;
  title: string;
  run(stack: BenchStack): Promise<RowInput[]>;
}

export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

export const round = (n: number) => Math.round(n * 1000) / 1000;
export const ms = () => performance.now();

export async function repeat(times: number, fn: () => Promise<number>): Promise<number[]> {
  const samples: number[] = [];
  for (let i = 0; i < times; i++) samples.push(await fn());
  return samples;
}

let nonce = 0;
/** A name no earlier run used (job ids, object keys). */
export const fresh = (prefix: string) => `${prefix}-bench-${process.pid}-${Date.now()}-${nonce++}`;
export const nextNonce = () => nonce++;

/**
 * The parallel-tools ask: the model asks for 8 `http_get` calls of `latencyMs` each in one turn,
 * then answers once it has their results.
 */
export function routeSlowToolsTurn(tools: ToolServer, fake: FakeOpenAI, latencyMs: number): void {
  tools.reset();
  for (let i = 0; i < 8; i++) tools.route(`/slow${i}`, { delayMs: latencyMs });
  fake.setResponder((req) =>
    req.toolResults.length > 0
      ? { content: "done", delayMs: 0 }
      : {
          toolCalls: Array.from({ length: 8 }, (_, i) => ({
            name: "http_get",
            arguments: { url: tools.url(`/slow${i}`) },
          })),
          delayMs: 0,
        },
  );
}

/** A send client of the Job object `key`, through the stack's ingress. */
export const jobClient = (stack: BenchStack, key: string) =>
  stack.ingress.objectSendClient<Job>({ name: JOB_SERVICE }, key);
