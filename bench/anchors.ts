/**
 * Runs the anchor endpoint (bench/anchor-endpoint.ts) as a child process registered on the bench's
 * restate-server, and drives it through the ingress. Also: CPU time per process, read from /proc,
 * to say what bounds a throughput figure.
 */
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import * as clients from "@restatedev/restate-sdk-clients";
import { freePort } from "../src/restate/server.js";
import { NODE } from "../test/helpers/cli.js";
import { ms, type BenchStack } from "./common.js";
import type {
  AnchorAnalysis,
  anchorAsk,
  anchorFanOut,
  anchorInput,
  anchorNoop,
  anchorSeed,
} from "./anchor-endpoint.js";

export interface Anchors {
  pid: number;
  /** No-op invocations through the ingress, `concurrency` at a time: invocations per second. */
  noop(n: number, concurrency: number): Promise<number>;
  /** `texts.length` inputs of the given shape, `concurrency` at a time: inputs per second. */
  batch(
    shape: "input" | "seed",
    texts: string[],
    analyses: AnchorAnalysis[],
    concurrency: number,
  ): Promise<number>;
  /** One ask-shaped job (bench/anchor-endpoint.ts AnchorAsk): its wall time in ms. */
  ask(): Promise<number>;
  /** One invocation running `n` trivial ctx.runs in groups of `group`: its wall time in ms. */
  fanOut(n: number, group: number): Promise<number>;
  close(): Promise<void>;
}

/** Runs `fn(i)` for i < n with at most `concurrency` running at once. */
async function pool(n: number, concurrency: number, fn: (i: number) => PromiseLike<unknown>) {
  let next = 0;
  const worker = async () => {
    while (next < n) await fn(next++);
  };
  await Promise.all(Array.from({ length: Math.min(n, concurrency) }, worker));
}

let keys = 0;

export async function startAnchors(stack: Omit<BenchStack, "anchors">): Promise<Anchors> {
  const port = await freePort();
  const script = path.join(path.dirname(fileURLToPath(import.meta.url)), "anchor-endpoint.js");
  const child = spawn(NODE, [script, String(port)], { stdio: ["ignore", "pipe", "inherit"] });
  await new Promise<void>((resolve, reject) => {
    let out: string | undefined = "";
    // Read on after "listening" (the SDK logs every invocation), keeping nothing.
    child.stdout.on("data", (chunk: Buffer) => {
      if (out === undefined) return;
      out += chunk.toString();
      if (out.includes("listening")) {
        out = undefined;
        resolve();
      }
    });
    child.once("exit", (code) => reject(new Error(`anchor endpoint exited ${code}`)));
  });
  await stack.restate.admin.register(`http://127.0.0.1:${port}`);
  const ingress = clients.connect({ url: stack.restate.ingressUrl });
  const run = `${process.pid}-${Date.now()}`;
  return {
    pid: child.pid!,
    async noop(n, concurrency) {
      const noop = ingress.serviceClient<typeof anchorNoop>({ name: "AnchorNoop" });
      const started = ms();
      await pool(n, concurrency, () => noop.noop());
      return n / ((ms() - started) / 1000);
    },
    async batch(shape, texts, analyses, concurrency) {
      const name = shape === "input" ? "AnchorInput" : "AnchorSeed";
      const started = ms();
      await pool(texts.length, concurrency, (i) =>
        ingress
          .objectClient<typeof anchorInput | typeof anchorSeed>({ name }, `${run}-${keys++}`)
          .run({ baseUrl: stack.fake.baseUrl, text: texts[i]!, analyses }),
      );
      return texts.length / ((ms() - started) / 1000);
    },
    async ask() {
      const started = ms();
      await ingress
        .objectClient<typeof anchorAsk>({ name: "AnchorAsk" }, `${run}-${keys++}`)
        .run({ baseUrl: stack.fake.baseUrl, prompt: "bench" });
      return ms() - started;
    },
    async fanOut(n, group) {
      const started = ms();
      await ingress.serviceClient<typeof anchorFanOut>({ name: "AnchorFanOut" }).run({ n, group });
      return ms() - started;
    },
    async close() {
      if (child.exitCode !== null) return;
      const exited = new Promise((resolve) => child.once("exit", resolve));
      child.kill("SIGTERM");
      await exited;
    },
  };
}

/** CPU seconds (user + system) a process has used so far, from /proc/<pid>/stat. */
export function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  // Fields after the command name (which may hold spaces) start at state (field 3); utime is 14.
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

/** CPU seconds each named process used while `fn` ran, and its wall time. */
export async function cpuShare<T>(
  pids: Record<string, number>,
  fn: () => Promise<T>,
): Promise<{ value: T; wallS: number; cpuS: Record<string, number> }> {
  const before = Object.fromEntries(Object.entries(pids).map(([k, pid]) => [k, cpuSeconds(pid)]));
  const started = ms();
  const value = await fn();
  const wallS = (ms() - started) / 1000;
  const cpuS = Object.fromEntries(
    Object.entries(pids).map(([k, pid]) => [k, cpuSeconds(pid) - before[k]!]),
  );
  return { value, wallS, cpuS };
}

/** "restate-server 1.2 s (45%), endpoint …" over a wall time: where the 2 cores went. */
export function describeCpu(share: { wallS: number; cpuS: Record<string, number> }): string {
  const parts = Object.entries(share.cpuS).map(
    ([k, s]) => `${k} ${s.toFixed(1)} s (${Math.round((100 * s) / share.wallS)}%)`,
  );
  return `CPU over ${share.wallS.toFixed(1)} s wall: ${parts.join(", ")}`;
}
