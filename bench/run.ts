/**
 * `npm run bench`: pagent against the physical limit, side by side in one run.
 *
 * Starts its own restate-server, `pagent serve` endpoint, fake OpenAI server (configurable latency)
 * and tool server; runs each scenario several times; writes bench/RESULTS.md and bench/results.json.
 * Every figure that is compared is a ratio measured in this same run: absolute times drift on a
 * shared 2-core machine.
 *
 * Environment: BENCH_RUNS (default 5), BENCH_QUICK=1 (fewer runs, smaller N), BENCH_LATENCY_MS
 * (the "1 s" LLM latency of scenario 1, default 1000).
 */
import "../src/polyfill.js";
import { execFileSync, spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import * as clients from "@restatedev/restate-sdk-clients";
import { ChatOpenAI } from "@langchain/openai";
import type { AnalyzeRequest, AskRequest, Job } from "../services/index.js";
import { BUILTIN_ANALYSES } from "../services/analyses.js";
import { DEFAULT_RETRY, type JobResult } from "../services/types.js";
import { builtinTools } from "../services/tools/index.js";
import { CLI, NODE, runCli } from "../test/helpers/cli.js";
import { startFakeOpenAI, type FakeOpenAI } from "../test/helpers/fake-openai.js";
import { rssMiB } from "../test/helpers/procs.js";
import { schemaAnswer } from "../test/helpers/request-log.js";
import { startRestate, startServeProcess } from "../test/helpers/restate.js";
import { startToolServer } from "../test/helpers/tool-server.js";
import { chunkScenarios } from "./chunks.js";

const BENCH_DIR = path
  .dirname(fileURLToPath(import.meta.url))
  .replace(`${path.sep}dist${path.sep}bench`, `${path.sep}bench`);
const REPO = path.resolve(BENCH_DIR, "..");
const QUICK = process.env.BENCH_QUICK === "1";
const RUNS = Number(process.env.BENCH_RUNS ?? (QUICK ? 2 : 5));
const LATENCY = Number(process.env.BENCH_LATENCY_MS ?? 1000);

interface Row {
  scenario: string;
  unit: string;
  samples: number[];
  median: number;
  min: number;
  max: number;
  baseline: string;
  ratio: number | null;
  goal: string;
  met: boolean | null;
  note?: string;
}

const rows: Row[] = [];

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

function record(row: Omit<Row, "median" | "min" | "max">): Row {
  const full: Row = {
    ...row,
    median: round(median(row.samples)),
    min: round(Math.min(...row.samples)),
    max: round(Math.max(...row.samples)),
  };
  rows.push(full);
  const ratio = full.ratio === null ? "" : ` ratio ${full.ratio.toFixed(3)}`;
  console.log(
    `${full.scenario}: median ${full.median} ${full.unit} (${full.min}–${full.max})${ratio} goal ${full.goal}${full.met === null ? "" : full.met ? " MET" : " MISSED"}`,
  );
  return full;
}

const round = (n: number) => Math.round(n * 1000) / 1000;
const ms = () => performance.now();

async function repeat(times: number, fn: () => Promise<number>): Promise<number[]> {
  const samples: number[] = [];
  for (let i = 0; i < times; i++) samples.push(await fn());
  return samples;
}

let nonce = 0;
const fresh = (prefix: string) => `${prefix}-bench-${process.pid}-${Date.now()}-${nonce++}`;

async function main(): Promise<void> {
  console.log(
    `pagent bench: ${RUNS} runs per scenario${QUICK ? " (quick)" : ""}, node ${process.version}`,
  );
  const restate = await startRestate();
  const fake = await startFakeOpenAI();
  const tools = await startToolServer();
  // An MCP server from npm (stdio), granted to the endpoint through its own --mcp-config.
  const mcpDir = mkdtempSync(path.join(tmpdir(), "pagent-bench-mcp-"));
  const mcpServer = {
    command: process.execPath,
    args: [path.join(REPO, "node_modules/@modelcontextprotocol/server-everything/dist/index.js")],
  };
  writeFileSync(
    path.join(mcpDir, "mcp.json"),
    JSON.stringify({ mcpServers: { everything: mcpServer } }),
  );
  // Granted what the scenarios' jobs use: the fake model, the tool server and the repository.
  const endpoint = await startServeProcess(restate, { OPENAI_API_KEY: "sk-bench" }, [
    "--allow-base-url",
    fake.baseUrl,
    "--allow-host",
    tools.hostPort,
    "--allow-root",
    REPO,
    "--mcp-config",
    path.join(mcpDir, "mcp.json"),
  ]);
  const ingress = clients.connect({ url: restate.ingressUrl });
  const jobClient = (key: string) => ingress.objectSendClient<Job>({ name: "Job" }, key);
  const model = { name: "bench-model", baseUrl: fake.baseUrl };

  const runAnalyze = async (
    text: string,
    analyses = BUILTIN_ANALYSES,
  ): Promise<{ wall: number; result: JobResult }> => {
    const job = fresh("an");
    const request: AnalyzeRequest = {
      job,
      input: "bench",
      text,
      analyses: [...analyses],
      model,
      retry: DEFAULT_RETRY,
    };
    const started = ms();
    const send = await jobClient(job).analyze(
      request,
      clients.rpc.sendOpts({ idempotencyKey: job }),
    );
    const result = await ingress.result<JobResult>(send);
    return { wall: ms() - started, result };
  };

  const runAsk = async (
    maxSteps = 4,
    enabled = ["http_get"],
    mcp: AskRequest["tools"]["mcp"] = undefined,
  ): Promise<{ wall: number; result: JobResult }> => {
    const job = fresh("ask");
    const request: AskRequest = {
      job,
      input: "bench",
      prompt: "bench",
      maxSteps,
      model,
      tools: {
        enabled,
        allowRoots: [REPO],
        allowHosts: [tools.hostPort],
        commands: [],
        cwd: REPO,
        ...(mcp ? { mcp } : {}),
      },
      retry: DEFAULT_RETRY,
    };
    const started = ms();
    const send = await jobClient(job).ask(request, clients.rpc.sendOpts({ idempotencyKey: job }));
    const result = await ingress.result<JobResult>(send);
    return { wall: ms() - started, result };
  };

  try {
    // Warm up the whole path once, so the first measured run pays no start-up cost.
    fake.setResponder((req) => schemaAnswer(req, { delayMs: 0 }));
    await runAnalyze("warm up");

    // 1. analyze, 3 analyses, LLM latency 1 s.
    fake.setResponder((req) => schemaAnswer(req, { delayMs: LATENCY }));
    const analyzeWalls = await repeat(RUNS, async () => (await runAnalyze(`text ${nonce}`)).wall);
    const chat = new ChatOpenAI({
      model: "bench",
      apiKey: "sk-bench",
      maxRetries: 0,
      configuration: { baseURL: fake.baseUrl },
    });
    const sequential = await repeat(Math.min(RUNS, 3), async () => {
      const started = ms();
      for (let i = 0; i < 3; i++) await chat.invoke("sequential baseline");
      return ms() - started;
    });
    record({
      scenario: "1. analyze, 3 analyses, LLM 1 s: job wall / 1 s",
      unit: "ms",
      samples: analyzeWalls,
      baseline: `physical limit ${LATENCY} ms; sequential ${round(median(sequential))} ms`,
      ratio: median(analyzeWalls) / LATENCY,
      goal: "≤ 1.05",
      met: median(analyzeWalls) / LATENCY <= 1.05,
      note: `sequential run / limit = ${(median(sequential) / LATENCY).toFixed(3)}`,
    });

    // 2. ask, one turn with 8 tool calls of 1 s each, then a final turn; LLM latency 0.
    tools.reset();
    for (let i = 0; i < 8; i++) tools.route(`/slow${i}`, { delayMs: LATENCY });
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
    /** A row of 8 parallel calls of LATENCY each in one turn: the limit is one call's time. */
    const parallelRow = (scenario: string, samples: number[], note?: string) =>
      record({
        scenario,
        unit: "ms",
        samples,
        baseline: `physical limit ${LATENCY} ms (sequential: ${8 * LATENCY} ms)`,
        ratio: median(samples) / LATENCY,
        goal: "≤ 1.05",
        met: median(samples) / LATENCY <= 1.05,
        ...(note ? { note } : {}),
      });
    const askWalls = await repeat(RUNS, async () => (await runAsk()).wall);
    parallelRow("2. ask, 8 parallel tool calls of 1 s: job wall / 1 s", askWalls);

    // 2b. the same with an MCP server's tool: 8 calls of 1 s in one turn over one stdio connection.
    // The first job starts the server (the endpoint's pool keeps it): its cost is shown apart.
    fake.setResponder((req) =>
      req.toolResults.length > 0
        ? { content: "done", delayMs: 0 }
        : {
            toolCalls: Array.from({ length: 8 }, () => ({
              name: "everything__trigger-long-running-operation",
              arguments: { duration: LATENCY / 1000, steps: 1 },
            })),
            delayMs: 0,
          },
    );
    const mcp = [{ name: "everything", ...mcpServer, cwd: REPO }];
    const cold = await runAsk(4, [], mcp);
    if (cold.result.status !== "done")
      throw new Error(`MCP bench job: ${JSON.stringify(cold.result.errors)}`);
    const mcpWalls = await repeat(RUNS, async () => (await runAsk(4, [], mcp)).wall);
    parallelRow(
      "2b. ask, 8 parallel MCP tool calls of 1 s: job wall / 1 s",
      mcpWalls,
      `server start-up (first job, cold) adds ${round(cold.wall - median(mcpWalls))} ms`,
    );

    // 3. durable overhead per task: one agent turn fanning out N trivial tool calls.
    const wordCount = builtinTools.find((t) => t.name === "word_count")!;
    for (const n of QUICK ? [10, 100] : [10, 100, 1000]) {
      fake.setResponder((req) =>
        req.toolResults.length > 0
          ? { content: "done", delayMs: 0 }
          : {
              toolCalls: Array.from({ length: n }, (_, i) => ({
                name: "word_count",
                arguments: { text: `word ${i}` },
              })),
              delayMs: 0,
            },
      );
      const runs = n >= 1000 ? Math.min(RUNS, 2) : Math.min(RUNS, 3);
      const durable = await repeat(runs, async () => (await runAsk(3, ["word_count"])).wall);
      // The same work without Restate: the same two model turns and the same tool calls, in process.
      const plain = await repeat(runs, async () => {
        const started = ms();
        await chat.invoke("turn 1");
        await Promise.all(
          Array.from({ length: n }, (_, i) =>
            wordCount.run(wordCount.parse({ text: `word ${i}` }), {
              allowRoots: [],
              allowHosts: [],
              cwd: REPO,
              signal: new AbortController().signal,
            }),
          ),
        );
        await chat.invoke("turn 2");
        return ms() - started;
      });
      const perTask = (median(durable) - median(plain)) / n;
      record({
        scenario: `3. durable overhead per task, N=${n}: (durable − plain) / N`,
        unit: "ms/task",
        samples: durable.map((d, i) => (d - (plain[i] ?? median(plain))) / n),
        baseline: `plain Promise.all ${round(median(plain))} ms; durable ${round(median(durable))} ms`,
        ratio: null,
        goal: n >= 100 ? "≤ 0.5 ms" : "—",
        met: n >= 100 ? perTask <= 0.5 : null,
      });
    }

    // 4. batch throughput through the CLI (connect mode), zero-latency LLM.
    fake.setResponder((req) => schemaAnswer(req, { delayMs: 0 }));
    const batchDir = mkdtempSync(path.join(tmpdir(), "pagent-bench-batch-"));
    const throughput: Record<string, number> = {};
    for (const n of QUICK ? [100] : [100, 1000]) {
      const files = Array.from({ length: n }, (_, i) => {
        const file = path.join(batchDir, `in-${n}-${i}.txt`);
        writeFileSync(
          file,
          `Batch input ${i} of ${n}: a short note about the weather being fine today.`,
        );
        return file;
      });
      for (const concurrency of [16, 64]) {
        const samples = await repeat(n >= 1000 ? 1 : Math.min(RUNS, 2), async () => {
          const started = ms();
          const res = await runCli(
            [
              "analyze",
              ...files,
              "--fresh",
              "--concurrency",
              String(concurrency),
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
          if (res.code !== 0) throw new Error(`batch failed: ${res.stderr.slice(0, 500)}`);
          return n / ((ms() - started) / 1000);
        });
        throughput[`${n}@${concurrency}`] = median(samples);
        record({
          scenario: `4. batch ${n} inputs × 3 analyses, --concurrency ${concurrency}`,
          unit: "inputs/s",
          samples,
          baseline:
            n >= 1000 && throughput[`100@${concurrency}`]
              ? `100 inputs: ${round(throughput[`100@${concurrency}`]!)} inputs/s`
              : "—",
          ratio:
            n >= 1000 && throughput[`100@${concurrency}`]
              ? median(samples) / throughput[`100@${concurrency}`]!
              : null,
          goal:
            "≥ 150 inputs/s" + (n >= 1000 ? "; ratio ≈ 1 means time grows linearly with N" : ""),
          met: median(samples) >= 150,
        });
      }
    }
    rmSync(batchDir, { recursive: true, force: true });

    // 7. long inputs in chunks (bench/chunks.ts).
    const chunkRows = await chunkScenarios({ ingressUrl: restate.ingressUrl, fake, runs: RUNS });
    for (const row of chunkRows) record(row);

    // 5. CLI wall and 6. memory.
    await cliScenarios(fake, restate.adminUrl, endpoint.process.child.pid!, restate.pid);
  } finally {
    await endpoint[Symbol.asyncDispose]();
    rmSync(mcpDir, { recursive: true, force: true });
    await restate.stop();
    await fake.close();
    await tools.close();
  }
  writeResults();
}

/**
 * Runs a process to its end and times it; asynchronous, because the fake LLM server it talks to
 * lives in this process and must keep answering meanwhile.
 */
async function timeProcess(
  args: string[],
  env: Record<string, string | undefined> = {},
): Promise<{ wall: number; maxRssMiB: number }> {
  const rssFile = path.join(tmpdir(), `pagent-bench-rss-${process.pid}-${nonce++}`);
  const started = ms();
  const child = spawn(args[0]!, args.slice(1), {
    stdio: ["ignore", "ignore", "pipe"],
    env: {
      ...process.env,
      ...env,
      NODE_OPTIONS: `--require ${path.join(BENCH_DIR, "max-rss.cjs")}`,
      BENCH_RSS_FILE: rssFile,
    },
  });
  let stderr = "";
  child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
  const code = await new Promise<number | null>((resolve) => child.on("close", resolve));
  const wall = ms() - started;
  if (code !== 0)
    throw new Error(`${args.slice(1, 4).join(" ")} exited ${code}: ${stderr.slice(0, 800)}`);
  let maxRssMiB = NaN;
  try {
    maxRssMiB = Number(readFileSync(rssFile, "utf8")) / 1024;
    rmSync(rssFile);
  } catch {
    // the process did not report (not node)
  }
  return { wall, maxRssMiB };
}

async function cliScenarios(
  fake: FakeOpenAI,
  _adminUrl: string,
  servePid: number,
  serverPid: number,
): Promise<void> {
  fake.setResponder((req) => schemaAnswer(req, { delayMs: 0 }));
  const home = mkdtempSync(path.join(tmpdir(), "pagent-bench-home-"));
  const env = { PAGENT_HOME: home, NO_COLOR: "1", OPENAI_API_KEY: "sk-bench" };
  const analyzeArgs = (i: number) => [
    NODE,
    CLI,
    "analyze",
    "--text",
    `cli wall ${i} ${Date.now()}`,
    "--model",
    "bench",
    "--base-url",
    fake.baseUrl,
    "--json",
  ];
  try {
    const cold: number[] = [];
    for (let i = 0; i < Math.min(RUNS, 3); i++) {
      await runCli(["server", "stop"], { env });
      rmSync(path.join(home, "restate"), { recursive: true, force: true });
      cold.push((await timeProcess(analyzeArgs(i), env)).wall);
    }
    const warm = await repeat(
      RUNS,
      async () => (await timeProcess(analyzeArgs(100 + nonce), env)).wall,
    );
    const nodeEmpty = await repeat(RUNS, async () => (await timeProcess([NODE, "-e", ""])).wall);
    const depsImport = await repeat(
      RUNS,
      async () =>
        (
          await timeProcess([
            NODE,
            "--input-type=module",
            "-e",
            "await Promise.all(['commander','chalk','ora','zod','@restatedev/restate-sdk-clients','@restatedev/restate-sdk','@langchain/core/messages','@langchain/openai'].map((m) => import(m)))",
          ])
        ).wall,
    );
    const cliImport = await repeat(
      RUNS,
      async () => (await timeProcess([NODE, CLI, "--version"])).wall,
    );
    const context = `node -e '' ${round(median(nodeEmpty))} ms; import of all deps ${round(median(depsImport))} ms; pagent --version ${round(median(cliImport))} ms`;
    record({
      scenario: "5a. CLI wall, embedded server running",
      unit: "ms",
      samples: warm,
      baseline: context,
      ratio: median(warm) / median(nodeEmpty),
      goal: "≤ 600 ms",
      met: median(warm) <= 600,
    });
    record({
      scenario: "5b. CLI wall, nothing running (starts server + endpoint)",
      unit: "ms",
      samples: cold,
      baseline: context,
      ratio: median(cold) / median(nodeEmpty),
      goal: "≤ 1500 ms",
      met: median(cold) <= 1500,
    });

    const peak = await repeat(
      Math.min(RUNS, 3),
      async () => (await timeProcess(analyzeArgs(200 + nonce), env)).maxRssMiB,
    );
    record({
      scenario: "6a. peak RSS of the CLI process (analyze)",
      unit: "MiB",
      samples: peak,
      baseline: "—",
      ratio: null,
      goal: "—",
      met: null,
    });
    await new Promise((r) => setTimeout(r, 2000));
    const state = JSON.parse(readFileSync(path.join(home, "runtime.json"), "utf8")) as {
      server: { pid: number };
      endpoint: { pid: number };
    };
    const idle = rssMiB(state.server.pid) + rssMiB(state.endpoint.pid);
    record({
      scenario: "6b. idle RSS, embedded server + endpoint",
      unit: "MiB",
      samples: [idle],
      baseline: `server ${round(rssMiB(state.server.pid))} MiB + endpoint ${round(rssMiB(state.endpoint.pid))} MiB (bench's shared server ${round(rssMiB(serverPid))}, endpoint ${round(rssMiB(servePid))} after load)`,
      ratio: null,
      goal: "≤ 300 MB",
      met: idle * 1.048576 <= 300,
    });
  } finally {
    await runCli(["server", "stop"], { env });
    rmSync(home, { recursive: true, force: true });
  }
}

function writeResults(): void {
  const machine = `${process.platform} ${process.arch}, ${execFileSync("nproc").toString().trim()} cores, node ${process.version}`;
  writeFileSync(
    path.join(BENCH_DIR, "results.json"),
    `${JSON.stringify({ date: new Date().toISOString(), machine, runs: RUNS, rows }, null, 2)}\n`,
  );
  const lines = [
    "# pagent benchmark results",
    "",
    `Written by \`npm run bench\` on ${new Date().toISOString()} (${machine}), ${RUNS} runs per scenario unless noted.`,
    "Ratios compare figures measured side by side in this one run.",
    "",
    "| scenario | median | min–max | baseline | ratio | goal | met |",
    "|---|---|---|---|---|---|---|",
    ...rows.map(
      (r) =>
        `| ${r.scenario} | ${r.median} ${r.unit} | ${r.min}–${r.max} | ${r.baseline}${r.note ? `; ${r.note}` : ""} | ${r.ratio === null ? "—" : r.ratio.toFixed(3)} | ${r.goal} | ${r.met === null ? "—" : r.met ? "yes" : "**no**"} |`,
    ),
    "",
  ];
  writeFileSync(path.join(BENCH_DIR, "RESULTS.md"), lines.join("\n"));
  console.log(`wrote ${path.join(BENCH_DIR, "RESULTS.md")}`);
}

await main();
process.exit(0);
