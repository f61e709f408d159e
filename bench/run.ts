/**
 * `npm run bench`: pagent against the physical limit and against raw Restate, side by side in one run.
 *
 * Starts its own restate-server, `pagent serve` endpoint, fake OpenAI server (configurable latency)
 * and tool server; runs each scenario several times; writes bench/RESULTS.md and bench/results.json.
 * Every figure that is compared is a ratio measured in this same run: absolute times drift on a
 * shared 2-core machine.
 *
 * Environment: BENCH_RUNS (default 5), BENCH_QUICK=1 (fewer runs, smaller N), BENCH_LATENCY_MS
 * (the "1 s" LLM latency of scenario 1, default 1000), BENCH_ONLY=<regex> (only the scenarios whose
 * "id title" matches, e.g. `BENCH_ONLY='^(5|6)'`; such a partial run prints its rows and leaves
 * RESULTS.md and results.json as they are), BENCH_CPU_PROF=<dir> (a CPU profile of the endpoint).
 */
import "../src/polyfill.js";
import { execFileSync, spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import * as clients from "@restatedev/restate-sdk-clients";
import { HumanMessage, ToolMessage } from "@langchain/core/messages";
import { ChatOpenAI } from "@langchain/openai";
import type { AnalyzeRequest, AskRequest } from "../services/index.js";
import { BUILTIN_ANALYSES } from "../services/analyses.js";
import { FAN_OUT_CHUNK } from "../services/job/stopping.js";
import { DEFAULT_RETRY, type JobResult } from "../services/types.js";
import { builtinTools } from "../services/tools/index.js";
import { CLI, NODE, runCli } from "../test/helpers/cli.js";
import { startFakeOpenAI, type FakeOpenAI } from "../test/helpers/fake-openai.js";
import { rssMiB } from "../test/helpers/procs.js";
import { schemaAnswer } from "../test/helpers/request-log.js";
import { startRestate, startServeProcess } from "../test/helpers/restate.js";
import { startToolServer } from "../test/helpers/tool-server.js";
import { cpuShare, describeCpu, startAnchors } from "./anchors.js";
import { chunkScenarios } from "./chunks.js";
import { serverlessScenarios } from "./serverless.js";
import {
  fresh,
  jobClient,
  median,
  ms,
  nextNonce,
  repeat,
  round,
  routeSlowToolsTurn,
  type BenchStack,
  type Row,
  type RowInput,
  type Scenario,
} from "./common.js";

const BENCH_DIR = path
  .dirname(fileURLToPath(import.meta.url))
  .replace(`${path.sep}dist${path.sep}bench`, `${path.sep}bench`);
const REPO = path.resolve(BENCH_DIR, "..");
const QUICK = process.env.BENCH_QUICK === "1";
const RUNS = Number(process.env.BENCH_RUNS ?? (QUICK ? 2 : 5));
const LATENCY = Number(process.env.BENCH_LATENCY_MS ?? 1000);
const ONLY = process.env.BENCH_ONLY ? new RegExp(process.env.BENCH_ONLY) : undefined;
/** BENCH_CPU_PROF=<dir>: the endpoint writes a V8 CPU profile there when the bench stops it. */
const PROFILE = process.env.BENCH_CPU_PROF
  ? {
      NODE_OPTIONS: `--require ${path.join(BENCH_DIR, "cpu-prof.cjs")}`,
      BENCH_CPU_PROF_DIR: path.resolve(process.env.BENCH_CPU_PROF),
    }
  : {};

const rows: Row[] = [];

function record(row: RowInput): Row {
  const full: Row = {
    ...row,
    median: round(median(row.samples)),
    min: round(Math.min(...row.samples)),
    max: round(Math.max(...row.samples)),
  };
  rows.push(full);
  const ratio = full.ratio === null ? "" : ` ratio ${full.ratio.toFixed(3)}`;
  console.log(
    `${full.scenario}: median ${full.median} ${full.unit} (${full.min}–${full.max})${ratio} goal ${full.goal}${full.met === null ? "" : full.met ? " MET" : " MISSED"}\n  ${full.baseline}${full.note ? `\n  ${full.note}` : ""}`,
  );
  return full;
}

/** An MCP server from npm (stdio), granted to the endpoint through its own --mcp-config. */
const MCP_SERVER = {
  command: process.execPath,
  args: [path.join(REPO, "node_modules/@modelcontextprotocol/server-everything/dist/index.js")],
};
const MODEL = (fake: FakeOpenAI, name = "bench-model") => ({ name, baseUrl: fake.baseUrl });

async function runAnalyze(
  stack: BenchStack,
  text: string,
  analyses = BUILTIN_ANALYSES,
): Promise<{ wall: number; result: JobResult }> {
  const job = fresh("an");
  const request: AnalyzeRequest = {
    job,
    input: "bench",
    text,
    analyses: [...analyses],
    model: MODEL(stack.fake),
    retry: DEFAULT_RETRY,
  };
  const started = ms();
  const send = await jobClient(stack, job).analyze(
    request,
    clients.rpc.sendOpts({ idempotencyKey: job }),
  );
  const result = await stack.ingress.result<JobResult>(send);
  return { wall: ms() - started, result };
}

async function runAsk(
  stack: BenchStack,
  maxSteps = 4,
  enabled = ["http_get"],
  mcp: AskRequest["tools"]["mcp"] = undefined,
): Promise<{ wall: number; result: JobResult }> {
  const job = fresh("ask");
  const request: AskRequest = {
    job,
    input: "bench",
    prompt: "bench",
    maxSteps,
    model: MODEL(stack.fake),
    tools: {
      enabled,
      allowRoots: [REPO],
      allowHosts: [stack.tools.hostPort],
      commands: [],
      cwd: REPO,
      ...(mcp ? { mcp } : {}),
    },
    retry: DEFAULT_RETRY,
  };
  const started = ms();
  const send = await jobClient(stack, job).ask(
    request,
    clients.rpc.sendOpts({ idempotencyKey: job }),
  );
  const result = await stack.ingress.result<JobResult>(send);
  return { wall: ms() - started, result };
}

const chatOf = (fake: FakeOpenAI) =>
  new ChatOpenAI({
    model: "bench",
    apiKey: "sk-bench",
    maxRetries: 0,
    configuration: { baseURL: fake.baseUrl },
  });

/**
 * The phases of one ask job of scenario 2 from what the fake LLM and the tool server saw (same
 * clock as the bench): submit → LLM 1, LLM 1 answered → first tool call, first → last tool call,
 * last tool answered → LLM 2, LLM 2 answered → result.
 */
function askPhases(since: number, until: number, stack: BenchStack): number[] {
  const llm = stack.fake.requests.filter((r) => r.startedAt >= since && r.startedAt <= until);
  const hits = stack.tools.hits.filter((h) => h.startedAt >= since && h.startedAt <= until);
  const [first, second] = llm;
  const toolStarts = hits.map((h) => h.startedAt);
  const toolEnd = Math.max(...hits.map((h) => h.endedAt ?? NaN));
  return [
    first!.startedAt - since,
    Math.min(...toolStarts) - first!.endedAt!,
    Math.max(...toolStarts) - Math.min(...toolStarts),
    second!.startedAt - toolEnd,
    until - second!.endedAt!,
  ];
}

/** A row of 8 parallel calls of LATENCY each in one turn: the limit is one call's time. */
const parallelRow = (scenario: string, samples: number[], note?: string): RowInput => ({
  scenario,
  unit: "ms",
  samples,
  baseline: `physical limit ${LATENCY} ms (sequential: ${8 * LATENCY} ms)`,
  ratio: median(samples) / LATENCY,
  goal: "≤ 1.03",
  met: median(samples) / LATENCY <= 1.03,
  ...(note ? { note } : {}),
});

/** `pagent analyze <files> --concurrency C` through the CLI (connect mode): inputs per second. */
async function cliBatch(
  stack: BenchStack,
  files: string[],
  concurrency: number,
  extra: string[] = [],
  model = "bench",
): Promise<number> {
  const started = ms();
  const res = await runCli(
    [
      "analyze",
      ...files,
      "--fresh",
      "--concurrency",
      String(concurrency),
      "--model",
      model,
      "--base-url",
      stack.fake.baseUrl,
      "--json",
      "--restate-url",
      stack.restate.ingressUrl,
      "--admin-url",
      stack.restate.adminUrl,
      ...extra,
    ],
    { timeoutMs: 600_000 },
  );
  if (res.code !== 0) throw new Error(`batch failed: ${res.stderr.slice(0, 500)}`);
  return files.length / ((ms() - started) / 1000);
}

/** `n` small input files in `dir`. */
function batchFiles(dir: string, n: number, tag = ""): string[] {
  return Array.from({ length: n }, (_, i) => {
    const file = path.join(dir, `in-${tag}${n}-${i}.txt`);
    writeFileSync(
      file,
      `Batch input ${i} of ${n}: a short note about the weather being fine today.`,
    );
    return file;
  });
}

/** The processes whose CPU time a row reports. */
const pidsOf = (stack: BenchStack) => ({
  "restate-server": stack.restate.pid,
  endpoint: stack.endpoint.process.child.pid!,
  "anchor endpoint": stack.anchors.pid,
  "bench (fake LLM)": process.pid,
});

const scenarios: Scenario[] = [
  {
    id: "1",
    title: "analyze, 3 analyses, LLM 1 s",
    async run(stack) {
      stack.fake.setResponder((req) => schemaAnswer(req, { delayMs: LATENCY }));
      const walls = await repeat(
        RUNS,
        async () => (await runAnalyze(stack, `text ${nextNonce()}`)).wall,
      );
      const chat = chatOf(stack.fake);
      const sequential = await repeat(Math.min(RUNS, 3), async () => {
        const started = ms();
        for (let i = 0; i < 3; i++) await chat.invoke("sequential baseline");
        return ms() - started;
      });
      return [
        {
          scenario: "1. analyze, 3 analyses, LLM 1 s: job wall / 1 s",
          unit: "ms",
          samples: walls,
          baseline: `physical limit ${LATENCY} ms; sequential ${round(median(sequential))} ms`,
          ratio: median(walls) / LATENCY,
          goal: "≤ 1.05",
          met: median(walls) / LATENCY <= 1.05,
          note: `sequential run / limit = ${(median(sequential) / LATENCY).toFixed(3)}`,
        },
      ];
    },
  },
  {
    id: "2",
    title: "ask, 8 parallel tool calls of 1 s",
    async run(stack) {
      // One turn with 8 tool calls of 1 s each, then a final turn; LLM latency 0.
      const { tools, fake } = stack;
      routeSlowToolsTurn(tools, fake, LATENCY);
      const phases: number[][] = [];
      const walls = await repeat(RUNS, async () => {
        const since = performance.timeOrigin + ms();
        const { wall } = await runAsk(stack);
        phases.push(askPhases(since, since + wall, stack));
        return wall;
      });
      // Where the time beyond the tools' 1 s goes, median of each phase over the runs.
      const [toLlm, toTools, spread, toLlm2, toResult] = phases[0]!.map((_, i) =>
        round(median(phases.map((p) => p[i]!))),
      );
      // Raw Restate, the same invocations: what the shape itself costs on this machine.
      const anchor = await repeat(RUNS, () => stack.anchors.ask());
      return [
        parallelRow(
          "2. ask, 8 parallel tool calls of 1 s: job wall / 1 s",
          walls,
          `submit → LLM turn 1 ${toLlm} ms; its answer → first tool call ${toTools} ms (last one +${spread} ms); last tool answered → LLM turn 2 ${toLlm2} ms; its answer → result ${toResult} ms`,
        ),
        {
          scenario:
            "2. anchor: the same ask on raw Restate (1 object invocation → LLM invocation → 8 tool invocations → LLM invocation): wall / 1 s",
          unit: "ms",
          samples: anchor,
          baseline: `pagent ${round(median(walls))} ms: pagent / anchor ${(median(walls) / median(anchor)).toFixed(3)}`,
          ratio: median(anchor) / LATENCY,
          goal: "—",
          met: null,
        },
      ];
    },
  },
  {
    id: "2b",
    title: "ask, 8 parallel MCP tool calls of 1 s",
    async run(stack) {
      // 8 calls of 1 s in one turn over one stdio connection. The first job starts the server
      // (the endpoint's pool keeps it): its cost is shown apart.
      stack.fake.setResponder((req) =>
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
      const mcp = [{ name: "everything", ...MCP_SERVER, cwd: REPO }];
      const cold = await runAsk(stack, 4, [], mcp);
      if (cold.result.status !== "done")
        throw new Error(`MCP bench job: ${JSON.stringify(cold.result.errors)}`);
      const walls = await repeat(RUNS, async () => (await runAsk(stack, 4, [], mcp)).wall);
      return [
        parallelRow(
          "2b. ask, 8 parallel MCP tool calls of 1 s: job wall / 1 s",
          walls,
          `server start-up (first job, cold) adds ${round(cold.wall - median(walls))} ms`,
        ),
      ];
    },
  },
  {
    id: "3",
    title: "durable overhead per task",
    async run(stack) {
      // One agent turn fanning out N trivial tool calls.
      const wordCount = builtinTools.find((t) => t.name === "word_count")!;
      const chat = chatOf(stack.fake);
      const out: RowInput[] = [];
      for (const n of QUICK ? [10, 100] : [10, 100, 1000]) {
        stack.fake.setResponder((req) =>
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
        let cpu = "";
        const durable = await repeat(runs, async () => {
          const share = await cpuShare(pidsOf(stack), () => runAsk(stack, 3, ["word_count"]));
          cpu = describeCpu(share);
          return share.value.wall;
        });
        // Raw Restate's floor: the same n ctx.runs in one invocation, in groups of 100 likewise.
        const anchor = await repeat(runs, () => stack.anchors.fanOut(n, FAN_OUT_CHUNK));
        // The same work without Restate, in process: the same two model turns (the second one
        // carrying the n tool results, as the agent's does) and the same tool calls.
        const plain = await repeat(runs, async () => {
          const started = ms();
          const prompt = new HumanMessage("bench");
          const reply = await chat.invoke([prompt]);
          const calls = reply.tool_calls ?? [];
          const results = await Promise.all(
            calls.map((tc) =>
              wordCount.run(wordCount.parse(tc.args), {
                allowRoots: [],
                allowHosts: [],
                cwd: REPO,
                signal: new AbortController().signal,
              }),
            ),
          );
          await chat.invoke([
            prompt,
            reply,
            ...calls.map(
              (tc, i) =>
                new ToolMessage({
                  content: JSON.stringify(results[i]),
                  tool_call_id: tc.id!,
                  name: tc.name,
                }),
            ),
          ]);
          return ms() - started;
        });
        const perTask = (median(durable) - median(plain)) / n;
        out.push({
          scenario: `3. durable overhead per task, N=${n}: (durable − plain) / N`,
          unit: "ms/task",
          samples: durable.map((d, i) => (d - (plain[i] ?? median(plain))) / n),
          baseline: `plain Promise.all ${round(median(plain))} ms; durable ${round(median(durable))} ms; anchor (raw Restate, ${n} ctx.run in 1 invocation) ${round(median(anchor))} ms = ${round(median(anchor) / n)} ms/task`,
          ratio: null,
          goal: n >= 100 ? "≤ 0.5 ms" : "—",
          met: n >= 100 ? perTask <= 0.5 : null,
          note: cpu,
        });
      }
      return out;
    },
  },
  {
    id: "A",
    title: "anchor: no-op Restate invocations",
    async run(stack) {
      const n = QUICK ? 500 : 2000;
      const samples = await repeat(Math.min(RUNS, 3), () => stack.anchors.noop(n, 64));
      return [
        {
          scenario: `A. anchor: no-op Restate invocations through the ingress, ${n} at 64 at a time`,
          unit: "invocations/s",
          samples,
          baseline: "plain restate SDK endpoint on the same restate-server",
          ratio: null,
          goal: "—",
          met: null,
        },
      ];
    },
  },
  {
    id: "4",
    title: "batch throughput, against the anchors",
    async run(stack) {
      // Through the CLI (connect mode), zero-latency LLM; the anchors of the same inputs beside it.
      stack.fake.setResponder((req) => schemaAnswer(req, { delayMs: 0 }));
      const batchDir = mkdtempSync(path.join(tmpdir(), "pagent-bench-batch-"));
      const throughput: Record<string, number> = {};
      const out: RowInput[] = [];
      const pids = pidsOf(stack);
      const analyses = BUILTIN_ANALYSES.map((a) => ({
        name: a.name,
        instruction: a.instruction,
        schema: a.schema,
      }));
      try {
        for (const n of QUICK ? [100] : [100, 1000]) {
          const files = batchFiles(batchDir, n);
          const texts = files.map((f) => readFileSync(f, "utf8"));
          const runs = n >= 1000 ? 1 : Math.min(RUNS, 2);
          for (const concurrency of [16, 64]) {
            const cpu: string[] = [];
            const samples = await repeat(runs, async () => {
              const share = await cpuShare(pids, () => cliBatch(stack, files, concurrency));
              cpu.push(describeCpu(share));
              return share.value;
            });
            throughput[`${n}@${concurrency}`] = median(samples);
            const small = throughput[`100@${concurrency}`];
            out.push({
              scenario: `4. batch ${n} inputs × 3 analyses, --concurrency ${concurrency}`,
              unit: "inputs/s",
              samples,
              baseline: n >= 1000 && small ? `100 inputs: ${round(small)} inputs/s` : "—",
              ratio: n >= 1000 && small ? median(samples) / small : null,
              goal:
                "≥ 150 inputs/s" +
                (n >= 1000 ? "; ratio ≈ 1 means time grows linearly with N" : ""),
              met: median(samples) >= 150,
              note: cpu.at(-1)!,
            });
            if (concurrency !== 64) continue;
            for (const shape of ["input", "seed"] as const) {
              const cpuAnchor: string[] = [];
              const anchor = await repeat(runs, async () => {
                const share = await cpuShare(pids, () =>
                  stack.anchors.batch(shape, texts, analyses, concurrency),
                );
                cpuAnchor.push(describeCpu(share));
                return share.value;
              });
              const ratio = median(samples) / median(anchor);
              const what =
                shape === "input"
                  ? "same-shape anchor (1 object invocation + 3 child invocations of 1 ctx.run each)"
                  : "seed-shape anchor (3 ctx.run in 1 invocation)";
              out.push({
                scenario: `4. batch ${n} inputs @64: pagent / ${what}`,
                unit: "inputs/s",
                samples: anchor,
                baseline: `pagent ${round(median(samples))} inputs/s`,
                ratio,
                goal: n >= 1000 && shape === "input" ? "≥ 0.8" : "—",
                met: n >= 1000 && shape === "input" ? ratio >= 0.8 : null,
                note: `anchor ${cpuAnchor.at(-1)!}`,
              });
            }
          }
        }
      } finally {
        rmSync(batchDir, { recursive: true, force: true });
      }
      return out;
    },
  },
  {
    id: "7",
    title: "rate-limited batch, --rpm 600",
    async run(stack) {
      // Enough inputs for more than a minute at the limit, counted as they reach the provider.
      // Its own model name: the endpoint's limit for it is its own, and the other scenarios'
      // provider is not slowed for the next 2 minutes.
      const rpm = 600;
      const model = "bench-rpm";
      const n = QUICK ? 120 : 240;
      stack.fake.setResponder((req) => schemaAnswer(req, { delayMs: 0 }));
      const dir = mkdtempSync(path.join(tmpdir(), "pagent-bench-rpm-"));
      try {
        await cliBatch(stack, batchFiles(dir, n, "rpm"), 64, ["--rpm", String(rpm)], model);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
      const sent = stack.fake.requests
        .filter((r) => (r.body as { model?: string } | undefined)?.model === model)
        .map((r) => r.startedAt)
        .sort((a, b) => a - b);
      const minute = 60_000;
      const first = sent.filter((t) => t < sent[0]! + minute).length;
      // The busiest minute: every window that starts at a request.
      let busiest = 0;
      for (let i = 0, j = 0; i < sent.length; i++) {
        while (j < sent.length && sent[j]! < sent[i]! + minute) j++;
        busiest = Math.max(busiest, j - i);
      }
      const span = (sent.at(-1)! - sent[0]!) / 1000;
      return [
        {
          scenario: `7. --rpm ${rpm}, batch of ${n} inputs × 3: requests the provider got in the first minute / ${rpm}`,
          unit: "requests",
          samples: [first],
          baseline: `${sent.length} requests over ${round(span)} s; busiest minute ${busiest}`,
          ratio: first / rpm,
          goal: `≥ 0.95, and no minute above ${rpm}`,
          met: first >= 0.95 * rpm && busiest <= rpm,
        },
      ];
    },
  },
  {
    id: "8",
    title: "long inputs in chunks",
    run: chunkScenarios,
  },
  {
    id: "S",
    title: "request-response (serverless) beside bidirectional, on a server of its own",
    run: (stack) => serverlessScenarios({ ...stack, latencyMs: LATENCY }),
  },
  {
    id: "5 6",
    title: "CLI wall and memory",
    async run(stack) {
      // It records its rows itself.
      await cliScenarios(
        stack.fake,
        stack.restate.adminUrl,
        stack.endpoint.process.child.pid!,
        stack.restate.pid,
      );
      return [];
    },
  },
];

async function main(): Promise<void> {
  const selected = scenarios.filter((s) => !ONLY || ONLY.test(`${s.id} ${s.title}`));
  console.log(
    `pagent bench: ${RUNS} runs per scenario${QUICK ? " (quick)" : ""}, node ${process.version}` +
      (ONLY ? `; only ${selected.map((s) => s.id).join(", ") || "nothing"} (BENCH_ONLY)` : ""),
  );
  const restate = await startRestate();
  const fake = await startFakeOpenAI();
  const tools = await startToolServer();
  const mcpDir = mkdtempSync(path.join(tmpdir(), "pagent-bench-mcp-"));
  writeFileSync(
    path.join(mcpDir, "mcp.json"),
    JSON.stringify({ mcpServers: { everything: MCP_SERVER } }),
  );
  // Granted what the scenarios' jobs use: the fake model, the tool server and the repository.
  const endpoint = await startServeProcess(restate, { OPENAI_API_KEY: "sk-bench", ...PROFILE }, [
    "--allow-base-url",
    fake.baseUrl,
    "--allow-host",
    tools.hostPort,
    "--allow-root",
    REPO,
    "--mcp-config",
    path.join(mcpDir, "mcp.json"),
  ]);
  const base = {
    restate,
    fake,
    tools,
    endpoint,
    ingress: clients.connect({ url: restate.ingressUrl }),
    runs: RUNS,
    quick: QUICK,
    repo: REPO,
  };
  const stack: BenchStack = { ...base, anchors: await startAnchors(base) };
  try {
    // Warm up the whole path once, so the first measured run pays no start-up cost.
    fake.setResponder((req) => schemaAnswer(req, { delayMs: 0 }));
    await runAnalyze(stack, "warm up");
    for (const scenario of selected) for (const row of await scenario.run(stack)) record(row);
  } finally {
    await stack.anchors.close();
    await endpoint[Symbol.asyncDispose]();
    rmSync(mcpDir, { recursive: true, force: true });
    await restate.stop();
    await fake.close();
    await tools.close();
  }
  if (ONLY) console.log("BENCH_ONLY: a partial run; RESULTS.md and results.json left as they are");
  else writeResults();
}

/**
 * Runs a process to its end and times it; asynchronous, because the fake LLM server it talks to
 * lives in this process and must keep answering meanwhile.
 */
async function timeProcess(
  args: string[],
  env: Record<string, string | undefined> = {},
): Promise<{ wall: number; maxRssMiB: number }> {
  const rssFile = path.join(tmpdir(), `pagent-bench-rss-${process.pid}-${nextNonce()}`);
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
      async () => (await timeProcess(analyzeArgs(100 + nextNonce()), env)).wall,
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
      goal: "≤ 300 ms",
      met: median(warm) <= 300,
    });
    record({
      scenario: "5b. CLI wall, nothing running (starts server + endpoint)",
      unit: "ms",
      samples: cold,
      baseline: context,
      ratio: median(cold) / median(nodeEmpty),
      goal: "≤ 1000 ms",
      met: median(cold) <= 1000,
    });
    // The same command with a throwaway server of its own, against the server-running wall.
    const ephemeral = await repeat(
      Math.min(RUNS, 3),
      async () => (await timeProcess([...analyzeArgs(300 + nextNonce()), "--ephemeral"], env)).wall,
    );
    record({
      scenario: "5c. --ephemeral: whole command − the same command with the server running",
      unit: "ms",
      samples: ephemeral.map((wall) => wall - median(warm)),
      baseline: `--ephemeral ${round(median(ephemeral))} ms; server running ${round(median(warm))} ms`,
      ratio: null,
      goal: "≤ 1000 ms",
      met: median(ephemeral) - median(warm) <= 1000,
    });

    const peak = await repeat(
      Math.min(RUNS, 3),
      async () => (await timeProcess(analyzeArgs(200 + nextNonce()), env)).maxRssMiB,
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
      goal: "≤ 250 MiB",
      met: idle <= 250,
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
