/**
 * Real-world LLM failures against a real restate-server, `pagent serve` and the fake OpenAI server:
 * rate limits (429 + Retry-After, --rpm), hung calls (--task-timeout), a whole-job --timeout, token
 * budgets and prices, malformed output, and an API key that must never leak anywhere.
 */
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { parseNdjson, REPO_ROOT, runCli, type CliOptions, type CliResult } from "../helpers/cli.js";
import type { FakeLogEntry, FakeOpenAI, FakeReply } from "../helpers/fake-openai.js";
import { filesContaining, filesUnder, waitForExit } from "../helpers/procs.js";
import { analysisOf, analysisOfSystem, inputOf, schemaAnswer } from "../helpers/request-log.js";
import type { TestEndpoint, TestRestate } from "../helpers/restate.js";
import { useConnectedStack } from "../helpers/stack.js";

const API_KEY = "sk-test-SECRET-123";
const SECRET = "SECRET-123";
/** A gateway credential in a custom header: the endpoint expands it from its own environment. */
const HEADER_ENV = "PAGENT_TEST_GATEWAY_TOKEN";
const HEADER_SECRET = "gw-HSECRET-456";
const HEADER = `X-Gateway-Token: Bearer \${${HEADER_ENV}}`;
/** The keys, in the endpoint's environment and in every CLI run's. */
const KEY_ENV = { OPENAI_API_KEY: API_KEY, [HEADER_ENV]: HEADER_SECRET };

let restate: TestRestate;
let endpoint: TestEndpoint;
let fake: FakeOpenAI;
let dir: string;
/** Every CLI output of this file, searched for the key at the end. */
const outputs: { args: string[]; stdout: string; stderr: string }[] = [];

const stack = useConnectedStack({
  name: "failures",
  // The key reaches the endpoint through its environment only.
  serveEnv: KEY_ENV,
  // Granted what the jobs use: the fake model, and the directory `ask` runs in (its default root).
  grants: ({ fake }) => [
    "--allow-base-url",
    fake.baseUrl,
    "--allow-root",
    REPO_ROOT,
    "--header",
    HEADER,
  ],
  respond: schemaAnswer,
  startTimeoutMs: 90_000,
  started: (parts) => ({ restate, endpoint, fake, dir } = parts),
});

const connect = (): string[] => stack.connectFlags;

async function cli(args: string[], options: CliOptions = {}): Promise<CliResult> {
  const res = await runCli(args, {
    timeoutMs: 120_000,
    ...options,
    env: { ...KEY_ENV, ...options.env },
  });
  outputs.push({ args, stdout: res.stdout, stderr: res.stderr });
  return res;
}

/** `pagent analyze ARGS` against the fake model (`fake` unless --model is given), in connect mode. */
function analyze(args: string[], options: CliOptions = {}): Promise<CliResult> {
  const model = args.includes("--model") ? [] : ["--model", "fake"];
  return cli(["analyze", ...args, ...model, "--base-url", fake.baseUrl, ...connect()], options);
}

let unique = 0;
function uniqueText(what: string): string {
  unique++;
  return `${what} (${unique}-${process.pid}-${Date.now()}): the launch went well and customers liked it.`;
}

/** Writes `n` input files with distinct contents; returns their paths in order. */
function inputFiles(name: string, n: number): string[] {
  const sub = path.join(dir, name);
  mkdirSync(sub);
  const stamp = `${process.pid}-${Date.now()}`;
  return Array.from({ length: n }, (_, i) => {
    const file = path.join(sub, `in-${String(i).padStart(3, "0")}.txt`);
    writeFileSync(file, `Input ${i} of ${name} ${stamp}: the release went fine.`);
    return file;
  });
}

const ONE = ["--analysis", "one=Say one thing about the text", "--only", "one"];

interface JobJson {
  job: string | null;
  status: string;
  input: string;
  result: Record<string, unknown> | null;
  errors: Record<string, { message: string }>;
  usage: { input: number; output: number; total: number };
  cost?: number;
  notRun?: boolean;
}

function parseJson<T = JobJson>(res: CliResult): T {
  try {
    return JSON.parse(res.stdout) as T;
  } catch (error) {
    throw new Error(`stdout is not JSON (${(error as Error).message})\n${explain(res)}`);
  }
}

function explain(res: CliResult): string {
  return `exit ${res.code}\nstdout: ${res.stdout.slice(-4000)}\nstderr: ${res.stderr.slice(-4000)}`;
}

/** A small seeded PRNG (mulberry32), so the failure pattern is the same on every run. */
function seeded(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The fake's requests grouped by input text, each group in arrival order. */
function byInput(entries: FakeLogEntry[]): Map<string, FakeLogEntry[]> {
  const groups = new Map<string, FakeLogEntry[]>();
  for (const entry of [...entries].sort((a, b) => a.startedAt - b.startedAt)) {
    const key = inputOf(entry);
    groups.set(key, [...(groups.get(key) ?? []), entry]);
  }
  return groups;
}

describe("rate limits", () => {
  it("rides a batch of 200 through 20% 429 (Retry-After: 1) and 5% 500, honouring Retry-After", async () => {
    const random = seeded(7);
    fake.setResponder((req) => {
      const r = random();
      if (r < 0.2) return { status: 429, headers: { "retry-after": "1" } };
      if (r < 0.25) return { status: 500 };
      return schemaAnswer(req);
    });
    const files = inputFiles("rate-limited", 200);
    const started = performance.now();
    // 10 attempts: at 25% failures per request, 5 would leave a 1-in-5 chance that one input fails.
    const res = await analyze([
      ...files,
      ...ONE,
      "--concurrency",
      "32",
      "--retries",
      "10",
      "--ndjson",
    ]);
    const wall = performance.now() - started;
    expect(res.code, explain(res)).toBe(0);
    const events = parseNdjson(res.stdout);
    const last = events.at(-1)!;
    expect(last.type).toBe("job.done");
    expect(last.status).toBe("done");
    const items = last.result as JobJson[];
    expect(items.map((i) => i.input)).toEqual(files);
    for (const item of items) {
      expect(item.status, item.input).toBe("done");
      expect(item.result).toEqual({ one: { result: expect.any(String) as unknown } });
    }

    const log = fake.requests;
    const count = (status: number) => log.filter((e) => e.status === status).length;
    let gaps = 0;
    let minGap = Infinity;
    for (const [input, requests] of byInput(log)) {
      expect(requests.at(-1)!.status, input).toBe(200);
      for (const [i, request] of requests.entries()) {
        if (request.status !== 429) continue;
        const next = requests[i + 1]!;
        const gap = next.startedAt - request.endedAt!;
        minGap = Math.min(minGap, gap);
        gaps++;
        // The provider asked for 1 s; allow 50 ms of clock and scheduling slack.
        expect(gap, `${input}: retried ${gap.toFixed(0)} ms after a 429`).toBeGreaterThanOrEqual(
          950,
        );
      }
    }
    expect(byInput(log).size).toBe(200);
    expect(gaps).toBe(count(429));

    // Each retried input shows it in --ndjson: a task.retrying event with the reason.
    const inputOfJob = new Map(items.map((i) => [i.job, i.input]));
    const retrying = events.filter((e) => e.type === "task.retrying");
    const retriedInputs = new Set(retrying.map((e) => inputOfJob.get(e.job as string)));
    const failedInputs = [...byInput(log).values()].filter((rs) => rs.length > 1).length;
    for (const event of retrying) expect(String(event.error)).toMatch(/HTTP (429|500)/);
    expect(
      retrying.some((e) =>
        /HTTP 429 rate limited \(provider asked to wait 1s\)/.test(String(e.error)),
      ),
    ).toBe(true);
    console.log(
      `[200 batch] wall ${(wall / 1000).toFixed(1)} s, ${log.length} requests (${count(429)}× 429, ${count(500)}× 500), ` +
        `${failedInputs} inputs retried, ${retriedInputs.size} seen retrying in --ndjson (${retrying.length} events), ` +
        `shortest wait after a 429 ${minGap.toFixed(0)} ms`,
    );
    expect(count(429)).toBeGreaterThan(20);
    expect(count(500)).toBeGreaterThan(3);
    // The watcher polls every 150 ms and a retry waits at least 500 ms: it sees nearly all of them.
    expect(retriedInputs.size).toBeGreaterThanOrEqual(Math.floor(failedInputs * 0.9));
    expect(wall).toBeLessThan(60_000);
  }, 180_000);

  it("waits as long as the provider asks, beyond the 10 s longest backoff", async () => {
    let calls = 0;
    fake.setResponder((req) =>
      ++calls === 1 ? { status: 429, headers: { "retry-after": "11" } } : schemaAnswer(req),
    );
    const res = await analyze(["--text", uniqueText("long retry-after"), ...ONE, "--json"]);
    expect(res.code, explain(res)).toBe(0);
    const [first, second] = fake.requests;
    expect(fake.requests).toHaveLength(2);
    const gap = second!.startedAt - first!.endedAt!;
    console.log(`[retry-after 11] retried after ${gap.toFixed(0)} ms`);
    expect(gap).toBeGreaterThanOrEqual(10_950);
  }, 60_000);

  it("--rpm 60 keeps 30 requests at one a second (burst: 1)", async () => {
    const files = inputFiles("rpm", 30);
    // Its own model name, so its own limiter: the endpoint keeps one per base URL and model.
    const res = await analyze(
      [...files, ...ONE, "--model", "fake-rpm", "--concurrency", "30", "--rpm", "60", "--json"],
      { timeoutMs: 120_000 },
    );
    expect(res.code, explain(res)).toBe(0);
    expect(parseJson<JobJson[]>(res).every((i) => i.status === "done")).toBe(true);
    const starts = fake.requests.map((e) => e.startedAt).sort((a, b) => a - b);
    expect(starts).toHaveLength(30);
    // A token bucket of one request refilled at one a second: between any two requests i < j there
    // were at most 1 + (t_j - t_i) / 1 s requests. 100 ms of slack for the way to the fake server.
    let tightest = Infinity;
    for (let i = 0; i < starts.length; i++) {
      for (let j = i + 1; j < starts.length; j++) {
        const allowed = 1 + (starts[j]! - starts[i]! + 100) / 1000;
        tightest = Math.min(tightest, allowed - (j - i + 1));
        expect(j - i + 1, `requests ${i}..${j}`).toBeLessThanOrEqual(allowed);
      }
    }
    const windows = Array.from({ length: 30 }, (_, i) => i).map(
      (i) => starts.filter((t) => t >= starts[i]! && t < starts[i]! + 1000).length,
    );
    console.log(
      `[rpm 60] 30 requests over ${((starts.at(-1)! - starts[0]!) / 1000).toFixed(1)} s, max in any 1 s window ${Math.max(...windows)}, slack ${tightest.toFixed(2)}`,
    );
    expect(Math.max(...windows)).toBeLessThanOrEqual(2);
    expect(starts.at(-1)! - starts[0]!).toBeGreaterThanOrEqual(28_900);
  }, 120_000);
});

describe("timeouts", () => {
  it("aborts a hung call at --task-timeout and retries it; the job finishes", async () => {
    let calls = 0;
    fake.setResponder((req) => (++calls === 1 ? { hang: true } : schemaAnswer(req)));
    const res = await analyze(
      ["--text", uniqueText("hang"), ...ONE, "--task-timeout", "2s", "--ndjson"],
      { timeoutMs: 90_000 },
    );
    const requests = fake.requests.map((e) => ({
      reply: e.replyKind,
      status: e.status,
      aborted: e.aborted,
      ms: (e.endedAt ?? Date.now()) - e.startedAt,
    }));
    expect(
      res.code,
      `${explain(res)}
requests: ${JSON.stringify(requests)}`,
    ).toBe(0);
    const events = parseNdjson(res.stdout);
    expect(events.at(-1)).toMatchObject({ type: "job.done", status: "done" });
    const retrying = events.filter((e) => e.type === "task.retrying");
    expect(retrying.length).toBeGreaterThanOrEqual(1);
    expect(String(retrying[0]!.error)).toMatch(/timed out after 2000 ms/);
    const [hung, retry] = fake.requests;
    expect(fake.requests).toHaveLength(2);
    expect(hung!.replyKind).toBe("hang");
    expect(hung!.aborted).toBe(true);
    const gap = retry!.startedAt - hung!.startedAt;
    console.log(`[hang] retried ${gap.toFixed(0)} ms after the hung call started`);
    expect(gap).toBeGreaterThanOrEqual(1950);
    expect(gap).toBeLessThan(15_000);
  }, 120_000);

  it("--timeout ends a job whose calls take 10 s well before, as failed, and stops its calls", async () => {
    fake.setResponder((req) => schemaAnswer(req, { delayMs: 10_000 }));
    const started = performance.now();
    const res = await analyze(["--text", uniqueText("job timeout"), "--timeout", "2s", "--json"]);
    const wall = performance.now() - started;
    expect(res.code, explain(res)).toBe(1);
    const out = parseJson(res);
    expect(out.status).toBe("failed");
    expect(out.result).toEqual({});
    for (const name of ["sentiment", "key-points", "summary"]) {
      expect(out.errors[name]!.message).toMatch(
        /^stopped: the job's --timeout of 2s passed before this analysis finished/,
      );
    }
    console.log(`[job timeout] CLI wall ${wall.toFixed(0)} ms`);
    expect(wall).toBeLessThan(7000);
    // The running calls were cancelled, not left to finish: their HTTP requests were aborted.
    const deadline = Date.now() + 5000;
    while (Date.now() < deadline && !fake.requests.every((e) => e.aborted)) {
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(fake.requests.map((e) => e.aborted)).toEqual([true, true, true]);

    // Human mode says why.
    const human = await analyze(["--text", uniqueText("job timeout human"), "--timeout", "2s"]);
    expect(human.code, explain(human)).toBe(1);
    expect(human.stdout).toMatch(/summary: failed: stopped: the job's --timeout of 2s passed/);
  });

  it("--timeout stops an agent waiting on a slow turn", async () => {
    fake.setResponder(() => ({ content: "too late", delayMs: 10_000 }));
    const started = performance.now();
    const res = await cli([
      "ask",
      "take your time",
      "--model",
      "fake",
      "--base-url",
      fake.baseUrl,
      "--timeout",
      "2s",
      "--json",
      ...connect(),
    ]);
    const wall = performance.now() - started;
    expect(res.code, explain(res)).toBe(1);
    const out = parseJson(res);
    expect(out.status).toBe("failed");
    expect(out.errors.agent!.message).toBe(
      "stopped: the job's --timeout of 2s passed before the agent gave a final answer",
    );
    expect(wall).toBeLessThan(7000);
  });

  it("--timeout on a batch stops running inputs and starts no new ones", async () => {
    fake.setResponder((req) => schemaAnswer(req, { delayMs: 10_000 }));
    const files = inputFiles("batch-timeout", 4);
    const started = performance.now();
    const res = await analyze([
      ...files,
      ...ONE,
      "--concurrency",
      "2",
      "--timeout",
      "2s",
      "--json",
    ]);
    const wall = performance.now() - started;
    expect(res.code, explain(res)).toBe(1);
    const items = parseJson<JobJson[]>(res);
    expect(items.map((i) => i.status)).toEqual(["failed", "failed", "failed", "failed"]);
    expect(items[0]!.errors.one!.message).toMatch(/--timeout of 2s passed/);
    expect(items[2]!.notRun).toBe(true);
    expect(items[2]!.errors.input!.message).toMatch(
      /^stopped: the job's --timeout of 2s passed before this input started/,
    );
    expect(fake.requests).toHaveLength(2);
    expect(wall).toBeLessThan(7000);
  });
});

describe("huge replies", () => {
  it("a 50 MB reply fails only that analysis with a clear message, asked once, and the job ends", async () => {
    fake.setResponder((req) =>
      analysisOfSystem(req.system) === "summary"
        ? { content: "x".repeat(50 * 1024 * 1024) }
        : schemaAnswer(req),
    );
    const started = Date.now();
    const res = await analyze(["--text", uniqueText("huge reply"), "--retries", "2", "--json"], {
      timeoutMs: 90_000,
    });
    expect(res.code, explain(res)).toBe(3);
    const job = parseJson(res);
    expect(Object.keys(job.result!).sort()).toEqual(["key-points", "sentiment"]);
    expect(job.errors.summary!.message).toMatch(
      /the model's reply is too large to keep: 100\.0 MiB as a journal entry, over maxReplyBytes \(4\.0 MiB\)/,
    );
    // A reply that does not fit is no transient failure: it is not asked again.
    const summaries = fake.requests.filter((r) => analysisOf(r) === "summary");
    expect(summaries).toHaveLength(1);
    console.log(`HUGE-REPLY: ended in ${Date.now() - started} ms, ${summaries.length} request(s)`);
  });
});

describe("budgets and cost", () => {
  const usage = { prompt_tokens: 100, completion_tokens: 50 };

  it("--max-tokens-total stops a batch part-way: exit 3, finished results printed, cost shown", async () => {
    fake.setResponder((req) => schemaAnswer(req, { usage, delayMs: 100 }));
    const config = path.join(dir, "prices.json");
    writeFileSync(config, JSON.stringify({ prices: { fake: { input: 1, output: 2 } } }));
    const files = inputFiles("budget", 10);
    const args = [...files, ...ONE, "--concurrency", "2", "--max-tokens-total", "400"];
    const res = await analyze([...args, "--config", config, "--json"]);
    expect(res.code, explain(res)).toBe(3);
    const items = parseJson<JobJson[]>(res);
    // 2 start; each finish (150 tokens) starts the next while under 400: after the 3rd (450) none.
    expect(items.map((i) => i.status)).toEqual([
      ...Array.from({ length: 4 }, () => "done"),
      ...Array.from({ length: 6 }, () => "failed"),
    ]);
    for (const item of items.slice(0, 4)) {
      expect(item.result).toEqual({ one: { result: expect.any(String) as unknown } });
      expect(item.usage.total).toBe(150);
      // (100 × $1 + 50 × $2) per million tokens.
      expect(item.cost).toBeCloseTo(0.0002, 10);
    }
    for (const item of items.slice(4)) {
      expect(item.notRun).toBe(true);
      expect(item.errors.input!.message).toMatch(
        /^not run: token budget exhausted \(450 of --max-tokens-total 400 tokens used\)/,
      );
    }
    expect(fake.requests).toHaveLength(4);

    // The same batch in human mode (attached): results, the inputs not run, and the cost.
    const human = await analyze([...args, "--config", config]);
    expect(human.code, explain(human)).toBe(3);
    expect(human.stdout.match(/^one:/gm)).toHaveLength(4);
    expect(human.stdout.match(/^not run: token budget exhausted/gm)).toHaveLength(6);
    expect(human.stderr).toMatch(/ · partial · .* · 600 tokens · \$0\.0008$/m);
    expect(fake.requests).toHaveLength(4);
  });

  it("--max-tokens-total stops an agent before its next turn (partial, exit 3)", async () => {
    fake.setResponder(() => ({
      toolCalls: [{ name: "calculator", arguments: { expression: "1+1" } }],
      usage,
    }));
    const res = await cli([
      "ask",
      "keep adding",
      "--model",
      "fake",
      "--base-url",
      fake.baseUrl,
      "--max-tokens-total",
      "300",
      "--json",
      ...connect(),
    ]);
    expect(res.code, explain(res)).toBe(3);
    const out = parseJson(res);
    expect(out.status).toBe("partial");
    expect(out.errors.agent!.message).toMatch(
      /^token budget exhausted \(300 of --max-tokens-total 300 tokens used\) before turn 3/,
    );
    expect(fake.requests).toHaveLength(2);
  });
});

describe("malformed model output", () => {
  it("--max-tokens-total keeps an analysis from asking again after an invalid answer", async () => {
    fake.setResponder((req) =>
      analysisOfSystem(req.system) === "summary"
        ? { content: "{not json", usage: { prompt_tokens: 100, completion_tokens: 50 } }
        : schemaAnswer(req),
    );
    const res = await analyze([
      "--text",
      uniqueText("malformed budget"),
      "--max-tokens-total",
      "200",
      "--json",
    ]);
    expect(res.code, explain(res)).toBe(3);
    const out = parseJson(res);
    expect(out.errors.summary!.message).toMatch(
      /^token budget exhausted \(300 of --max-tokens-total 200 tokens used\) before asking again: not valid JSON/,
    );
    expect(fake.requests.filter((e) => /Summarise/.test(JSON.stringify(e.body)))).toHaveLength(2);
  });

  it("succeeds when the model answers invalid JSON twice, then valid JSON", async () => {
    let summaryCalls = 0;
    fake.setResponder((req) => {
      if (analysisOfSystem(req.system) === "summary" && ++summaryCalls <= 2) {
        return { content: "{not json" };
      }
      return schemaAnswer(req);
    });
    const res = await analyze(["--text", uniqueText("malformed twice"), "--json"]);
    expect(res.code, explain(res)).toBe(0);
    const out = parseJson(res);
    expect(out.status).toBe("done");
    expect(out.result!.summary).toEqual({ summary: expect.any(String) as unknown });
    expect(summaryCalls).toBe(3);
  });

  it("fails only that task when the answer is never valid (exit 3)", async () => {
    fake.setResponder((req) =>
      analysisOfSystem(req.system) === "summary" ? { content: "{not json" } : schemaAnswer(req),
    );
    const res = await analyze(["--text", uniqueText("always malformed"), "--json"]);
    expect(res.code, explain(res)).toBe(3);
    const out = parseJson(res);
    expect(out.status).toBe("partial");
    expect(Object.keys(out.result!)).toEqual(["sentiment", "key-points"]);
    expect(out.errors.summary!.message).toMatch(/no valid answer in 3 tries: not valid JSON/);
  });
});

describe("secrets", () => {
  /** 401 echoing the key and the gateway header for sentiment; a first 429 / 500 echoing them for the others. */
  function leakyResponder() {
    const seen = new Map<string, number>();
    fake.setResponder((req) => {
      const analysis = analysisOfSystem(req.system);
      const key = `${analysis}:${req.lastUser}`;
      const n = (seen.get(key) ?? 0) + 1;
      seen.set(key, n);
      const echo = (status: number, extra = ""): FakeReply => ({
        status,
        headers: status === 429 ? { "retry-after": "1" } : {},
        body: {
          error: {
            message: `Incorrect API key provided: ${API_KEY}. ${extra}(request had Authorization: ${req.headers.authorization ?? ""}, X-Gateway-Token: ${req.headers["x-gateway-token"] ?? ""})`,
            type: "invalid_request_error",
            code: status === 401 ? "invalid_api_key" : null,
          },
        },
      });
      if (analysis === "sentiment") return echo(401);
      if (analysis === "key-points" && n === 1) return echo(429, "Slow down. ");
      if (analysis === "summary" && n === 1) return echo(500, "Upstream broke. ");
      return schemaAnswer(req);
    });
  }

  it("never shows the key or a header's secret in output, Restate's journal and state, logs or data files", async () => {
    leakyResponder();
    const modes = [[], ["--json"], ["--ndjson"], ["--verbose"], ["--verbose", "--ndjson"]];
    let job = "";
    for (const mode of modes) {
      const res = await analyze(["--text", uniqueText("secret"), "--header", HEADER, ...mode]);
      expect(res.code, explain(res)).toBe(3);
      if (mode[0] === "--json") job = parseJson(res).job!;
    }
    // The provider's message itself gets through, with the key cut out.
    const json = outputs.find((o) => o.args.includes("--json") && o.stdout.includes("Incorrect"));
    expect.soft(json?.stdout).toMatch(/Incorrect API key provided: \[redacted\]/);
    expect.soft(json?.stdout).toMatch(/X-Gateway-Token: \[redacted\]/);
    // The job records the header as written, the variable unexpanded.
    expect.soft(json?.stdout).toContain(`"X-Gateway-Token":"Bearer \${${HEADER_ENV}}"`);
    const status = await cli(["status", job, "--json", ...connect()]);
    const statusVerbose = await cli(["status", job, "--verbose", ...connect()]);
    expect(status.code, explain(status)).toBe(0);
    expect(statusVerbose.code, explain(statusVerbose)).toBe(0);

    // The embedded mode too: the CLI starts the server and the endpoint, with the key in the
    // endpoint's environment only; its data dir (state, logs, runtime.json) is searched below.
    const home = path.join(dir, "home");
    const embedded = await cli(
      [
        "analyze",
        "--text",
        uniqueText("embedded secret"),
        "--model",
        "fake",
        "--base-url",
        fake.baseUrl,
        "--header",
        HEADER,
      ],
      { env: { PAGENT_HOME: home }, timeoutMs: 120_000 },
    );
    const stop = await cli(["server", "stop"], { env: { PAGENT_HOME: home } });
    expect(embedded.code, explain(embedded)).toBe(3);
    expect(stop.code, explain(stop)).toBe(0);

    // Every output of every command this file ran (all modes, all tests).
    for (const output of outputs) {
      for (const secret of [SECRET, HEADER_SECRET]) {
        expect.soft(output.stdout, output.args.join(" ")).not.toContain(secret);
        expect.soft(output.stderr, output.args.join(" ")).not.toContain(secret);
      }
    }

    // Restate's journal, state and invocation table, every column.
    let redactedSeen = 0;
    for (const table of ["sys_journal", "state", "sys_invocation"]) {
      const rows = await restate.admin.query<Record<string, unknown>>(`SELECT * FROM ${table}`);
      const text = JSON.stringify(rows);
      expect(rows.length, table).toBeGreaterThan(0);
      expect.soft(text, table).not.toContain(SECRET);
      expect.soft(text, table).not.toContain(HEADER_SECRET);
      // Bytes columns come back as arrays of numbers or strings: decode and search them too.
      for (const row of rows) {
        for (const value of Object.values(row)) {
          if (Array.isArray(value) && value.every((v) => typeof v === "number")) {
            expect.soft(Buffer.from(value).includes(SECRET), table).toBe(false);
            expect.soft(Buffer.from(value).includes(HEADER_SECRET), table).toBe(false);
          }
        }
      }
      redactedSeen += text.split("[redacted]").length - 1;
    }
    // The search looks where the provider's errors went: their redacted messages are there.
    expect.soft(redactedSeen).toBeGreaterThan(0);

    // Logs: the server's, the endpoint's (its stdout/stderr), and every file in both data dirs.
    // This is the file's last test: stop the server gracefully so it flushes its state to disk.
    process.kill(restate.pid, "SIGTERM");
    expect(await waitForExit(restate.pid, 20_000)).toBe(true);
    const serverLog = path.join(path.dirname(restate.dataDir), "restate.log");
    for (const secret of [SECRET, HEADER_SECRET]) {
      expect.soft(readFileSync(serverLog, "utf8")).not.toContain(secret);
      expect.soft(endpoint.process.stdout + endpoint.process.stderr).not.toContain(secret);
    }
    expect(filesUnder(restate.dataDir).length).toBeGreaterThan(0);
    console.log(
      `[secrets] searched ${outputs.length} CLI outputs, ${filesUnder(restate.dataDir).length} files of the server's data dir, ${filesUnder(home).length} files of PAGENT_HOME`,
    );
    expect(filesUnder(home).some((f) => f.endsWith("endpoint.log"))).toBe(true);
    for (const secret of [SECRET, HEADER_SECRET]) {
      expect.soft(filesContaining(restate.dataDir, secret), "server data dir").toEqual([]);
      expect.soft(filesContaining(home, secret), "PAGENT_HOME").toEqual([]);
    }
    // The key and the header did reach the provider, from both endpoints: the search is not blind.
    expect(fake.requests.some((e) => e.headers.authorization === `Bearer ${API_KEY}`)).toBe(true);
    const gateway = fake.requests.filter(
      (e) => e.headers["x-gateway-token"] === `Bearer ${HEADER_SECRET}`,
    );
    expect(gateway.length).toBeGreaterThan(0);
  }, 180_000);
});
