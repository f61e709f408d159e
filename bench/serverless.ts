/**
 * What serverless costs (#17): the batch and ask scenarios with `Job` and `Tasks` as separate
 * request-response (HTTP/1.1) deployments, as a function platform runs them, and with only `Tasks`
 * in request-response mode, beside one bidirectional (HTTP/2) endpoint hosting both, in the same
 * run on the same restate-server. Its own
 * server, so the deployments it registers never touch the main bench's routing.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import * as clients from "@restatedev/restate-sdk-clients";
import type { AskRequest, Job } from "../services/index.js";
import { DEFAULT_RETRY, JOB_SERVICE, type JobResult } from "../services/types.js";
import { freePort } from "../src/restate/server.js";
import { runCli, spawnCli, waitForLine, type CliProcess } from "../test/helpers/cli.js";
import type { FakeOpenAI } from "../test/helpers/fake-openai.js";
import { schemaAnswer } from "../test/helpers/request-log.js";
import { startRestate } from "../test/helpers/restate.js";
import type { ToolServer } from "../test/helpers/tool-server.js";
import { median, round, routeSlowToolsTurn, type RowInput } from "./common.js";

export interface ServerlessBenchOptions {
  fake: FakeOpenAI;
  tools: ToolServer;
  runs: number;
  quick: boolean;
  /** Each tool call's latency in the ask scenario (ms). */
  latencyMs: number;
}

interface Measured {
  batch: number[];
  ask: number[];
}

export async function serverlessScenarios(options: ServerlessBenchOptions): Promise<RowInput[]> {
  const { fake, tools, latencyMs } = options;
  const restate = await startRestate();
  const dir = mkdtempSync(path.join(tmpdir(), "pagent-bench-serverless-"));
  const endpoints: CliProcess[] = [];
  const grants = ["--allow-base-url", fake.baseUrl, "--allow-host", tools.hostPort];
  const serve = async (args: string[], key: boolean) => {
    const port = String(await freePort());
    const proc = spawnCli(["serve", "--port", port, "--register", restate.adminUrl, ...args], {
      env: key ? { OPENAI_API_KEY: "sk-bench" } : {},
    });
    endpoints.push(proc);
    await waitForLine(proc, /registered/, 20_000);
    return proc;
  };
  const stop = async (proc: CliProcess) => {
    if (proc.child.exitCode !== null) return;
    const exited = new Promise((resolve) => proc.child.once("exit", resolve));
    proc.child.kill("SIGTERM");
    await exited;
  };

  const n = options.quick ? 50 : 100;
  const files = Array.from({ length: n }, (_, i) => {
    const file = path.join(dir, `in-${i}.txt`);
    writeFileSync(file, `Serverless input ${i}: a short note about the weather being fine.`);
    return file;
  });
  const repeats = options.quick ? 1 : Math.min(options.runs, 3);
  const ingress = clients.connect({ url: restate.ingressUrl });
  let nonce = 0;

  const batch = async () => {
    const started = performance.now();
    const res = await runCli(
      [
        "analyze",
        ...files,
        "--fresh",
        "--concurrency",
        "16",
        "--model",
        "bench",
        "--base-url",
        fake.baseUrl,
        "--json",
        "--restate-url",
        restate.ingressUrl,
        "--admin-url",
        restate.adminUrl,
      ],
      { timeoutMs: 600_000 },
    );
    if (res.code !== 0) throw new Error(`serverless batch failed: ${res.stderr.slice(0, 500)}`);
    return n / ((performance.now() - started) / 1000);
  };
  /** One turn of 8 parallel `http_get` calls of `latencyMs` each, then the answer. */
  const ask = async () => {
    const job = `ask-serverless-${process.pid}-${nonce++}`;
    const request: AskRequest = {
      job,
      input: "bench",
      prompt: "bench",
      maxSteps: 4,
      model: { name: "bench-model", baseUrl: fake.baseUrl },
      tools: {
        enabled: ["http_get"],
        allowRoots: [],
        allowHosts: [tools.hostPort],
        commands: [],
        cwd: dir,
      },
      retry: DEFAULT_RETRY,
    };
    const started = performance.now();
    const send = await ingress
      .objectSendClient<Job>({ name: JOB_SERVICE }, job)
      .ask(request, clients.rpc.sendOpts({ idempotencyKey: job }));
    const result = await ingress.result<JobResult>(send);
    if (result.status !== "done") throw new Error(`serverless ask: ${JSON.stringify(result)}`);
    return performance.now() - started;
  };
  const measure = async (): Promise<Measured> => {
    fake.setResponder((req) => schemaAnswer(req, { delayMs: 0 }));
    await batch(); // warm-up: the endpoints' first requests pay for loading code
    const batchSamples: number[] = [];
    for (let i = 0; i < repeats; i++) batchSamples.push(await batch());
    routeSlowToolsTurn(tools, fake, latencyMs);
    const askSamples: number[] = [];
    for (let i = 0; i < Math.max(repeats, 2); i++) askSamples.push(await ask());
    return { batch: batchSamples, ask: askSamples };
  };

  try {
    const bidi = await serve(["--services", "all", ...grants], true);
    const bidirectional = await measure();
    await stop(bidi);
    // Each pair is registered after the one before, so new invocations go to it.
    const job = await serve(["--services", "job"], false);
    const tasks = await serve(
      ["--services", "tasks", "--protocol", "request-response", ...grants],
      true,
    );
    // The Job on a long-running endpoint, the Tasks where a function would run them.
    const mixed = await measure();
    await stop(job);
    await stop(tasks);
    await serve(["--services", "job", "--protocol", "request-response"], false);
    await serve(["--services", "tasks", "--protocol", "request-response", ...grants], true);
    const requestResponse = await measure();
    const bidiBatch = median(bidirectional.batch);
    const bidiAsk = median(bidirectional.ask);
    /** A batch row: throughput in one split against the bidirectional endpoint's. */
    const batchRow = (scenario: string, samples: number[], note?: string) => ({
      scenario,
      unit: "inputs/s",
      samples,
      baseline: `bidirectional, one endpoint: ${round(bidiBatch)} inputs/s`,
      ratio: median(samples) / bidiBatch,
      goal: "— (what serverless costs)",
      met: null,
      ...(note ? { note } : {}),
    });
    return [
      batchRow(
        `S1. batch ${n} inputs × 3 analyses, --concurrency 16: request-response (Job and Tasks apart) / bidirectional`,
        requestResponse.batch,
      ),
      batchRow(
        "S1b. the same batch, Job bidirectional and Tasks request-response / all bidirectional",
        mixed.batch,
        `ask wall with this split / bidirectional = ${(median(mixed.ask) / bidiAsk).toFixed(3)}`,
      ),
      {
        scenario: `S2. ask, 8 parallel tool calls of ${latencyMs / 1000} s: request-response job wall / bidirectional`,
        unit: "ms",
        samples: requestResponse.ask,
        baseline: `bidirectional ${round(bidiAsk)} ms; physical limit ${latencyMs} ms`,
        ratio: median(requestResponse.ask) / bidiAsk,
        goal: "— (what serverless costs)",
        met: null,
        note: `request-response wall / limit = ${(median(requestResponse.ask) / latencyMs).toFixed(3)}`,
      },
    ];
  } finally {
    for (const proc of endpoints) await stop(proc);
    await restate.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}
