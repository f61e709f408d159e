/**
 * `pagent ask` end to end: a real restate-server, `pagent serve` registered with it, the CLI in
 * connect mode, the fake OpenAI server behind the real @langchain/openai client, and a loopback
 * HTTP server that `http_get` calls reach.
 */
import { mkdirSync, mkdtempSync, realpathSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { parseNdjson, runCli, type CliOptions, type CliResult } from "../helpers/cli.js";
import type {
  FakeOpenAI,
  FakeReply,
  FakeRequest,
  FakeResponder,
  FakeToolCall,
} from "../helpers/fake-openai.js";
import { useConnectedStack } from "../helpers/stack.js";
import { startToolServer, type ToolServer } from "../helpers/tool-server.js";

interface Usage {
  input: number;
  output: number;
  total: number;
}

interface AskJson {
  job: string;
  kind: string;
  status: string;
  input: string;
  model: { name: string; baseUrl?: string; offline?: boolean };
  result: {
    answer: string | null;
    transcript: { role: string; content: string; toolCalls?: unknown }[];
  };
  errors: Record<string, { message: string }>;
  usage: Usage;
  ms: number;
}

type Event = Record<string, unknown> & { type: string; job: string; v: number; ts: string };

let fake: FakeOpenAI;
let web: ToolServer;
let workDir: string;

const DEFAULT_ANSWER = "final answer";

/** First turn: the given tool calls; once tool results are present: a final answer. */
function toolsThenAnswer(calls: FakeToolCall[], answer = DEFAULT_ANSWER): FakeResponder {
  return (req: FakeRequest): FakeReply =>
    req.toolResults.length > 0 ? { content: answer } : { toolCalls: calls };
}

/** The tool results the model received in the request with this index, by tool call id. */
function toolResultsOf(index: number): Record<string, string> {
  const body = fake.requests[index]?.body as { messages?: Record<string, unknown>[] } | undefined;
  const out: Record<string, string> = {};
  for (const m of body?.messages ?? []) {
    if (m.role === "tool") {
      out[String(m.tool_call_id)] =
        typeof m.content === "string" ? m.content : JSON.stringify(m.content);
    }
  }
  return out;
}

function messagesOf(index: number): Record<string, unknown>[] {
  const body = fake.requests[index]?.body as { messages?: Record<string, unknown>[] } | undefined;
  return body?.messages ?? [];
}

const connectArgs = (): string[] => stack.connectFlags;

/** `pagent ask ARGS` against the fake model, in connect mode. */
function ask(args: string[], options: CliOptions = {}): Promise<CliResult> {
  return stack.cli(["ask", ...args, "--model", "fake", "--base-url", fake.baseUrl], options);
}

function parseJson(res: CliResult): AskJson {
  try {
    return JSON.parse(res.stdout) as AskJson;
  } catch {
    throw new Error(
      `stdout is not JSON (exit ${res.code})\nstdout: ${res.stdout}\nstderr: ${res.stderr}`,
    );
  }
}

function events(res: CliResult): Event[] {
  return parseNdjson(res.stdout) as Event[];
}

function describeRun(res: CliResult): string {
  return `exit ${res.code}\nstdout: ${res.stdout}\nstderr: ${res.stderr}`;
}

/** The command tools of one test, in a config file the endpoint reads too: it runs only what it grants. */
const TOOLS_CONFIG = "tools.config.json";

function writeToolsConfig(): void {
  const script =
    "let s='';process.stdin.on('data',d=>s+=d).on('end',()=>{const a=JSON.parse(s);" +
    "process.stdout.write('echo:'+a.word+':'+process.argv.slice(1).join(','))})";
  writeFileSync(
    path.join(workDir, TOOLS_CONFIG),
    JSON.stringify({
      tools: {
        echoargs: {
          description: "echo the word",
          argv: [process.execPath, "-e", script, "{{word}}"],
          timeoutMs: 10_000,
        },
        sleeper: {
          description: "sleeps",
          argv: [process.execPath, "-e", "setTimeout(() => {}, 10000)"],
          timeoutMs: 500,
        },
      },
    }),
  );
}

// Before the stack: the endpoint is granted the tool server's address.
beforeAll(async () => {
  web = await startToolServer();
});
afterAll(() => web?.close());

const stack = useConnectedStack({
  name: "ask",
  fake: { latencyMs: 0 },
  serveEnv: { OPENAI_API_KEY: "sk-test-key" },
  beforeServe: ({ dir }) => {
    workDir = dir;
    writeToolsConfig();
  },
  // What these tests' jobs use: the fake model, the tool server, directories under the temp dir and
  // the command tools of TOOLS_CONFIG run in workDir (the endpoint runs there with that config).
  grants: ({ fake }) => [
    "--allow-base-url",
    fake.baseUrl,
    "--allow-host",
    web.hostPort,
    "--allow-root",
    realpathSync(tmpdir()),
    "--config",
    TOOLS_CONFIG,
  ],
  inDir: true,
  respond: () => ({ content: DEFAULT_ANSWER }),
  startTimeoutMs: 120_000,
  started: (parts) => ({ fake } = parts),
});

beforeEach(() => web.reset());

describe("pagent ask: parallel tools", () => {
  it("runs the tool calls of one turn in parallel", async () => {
    for (const p of ["/a", "/b", "/c"]) web.route(p, { delayMs: 1000 });
    fake.setResponder(
      toolsThenAnswer([
        { id: "call_a", name: "http_get", arguments: { url: web.url("/a") } },
        { id: "call_b", name: "http_get", arguments: { url: web.url("/b") } },
        { id: "call_c", name: "http_get", arguments: { url: web.url("/c") } },
      ]),
    );
    const started = Date.now();
    const res = await ask(["fetch a, b and c", "--allow-host", web.hostPort, "--json"]);
    const wall = Date.now() - started;
    expect(res.code, describeRun(res)).toBe(0);
    const out = parseJson(res);
    expect(out.status).toBe("done");
    expect(out.result.answer).toBe(DEFAULT_ANSWER);

    expect(["/a", "/b", "/c"].map((p) => web.count(p))).toEqual([1, 1, 1]);
    const starts = web.hits.map((h) => h.startedAt);
    const ends = web.hits.map((h) => h.endedAt ?? Infinity);
    // Every request started before any of them was answered: they overlapped.
    expect(Math.max(...starts)).toBeLessThan(Math.min(...ends));
    expect(web.maxConcurrent).toBe(3);
    const window = Math.max(...ends) - Math.min(...starts);
    expect(window).toBeLessThan(1500);
    expect(fake.count()).toBe(2);
    expect(Object.values(toolResultsOf(1))).toEqual([
      "HTTP 200 OK\nok /a",
      "HTTP 200 OK\nok /b",
      "HTTP 200 OK\nok /c",
    ]);
    console.log(
      `[ask e2e] parallel http_get: server window ${Math.round(window)} ms, job ${out.ms} ms, CLI wall ${wall} ms`,
    );
  });

  it("retries a transient tool failure without re-running its siblings or the LLM turn", async () => {
    web.route("/b", { failTimes: 2, failStatus: 503 });
    fake.setResponder(
      toolsThenAnswer([
        { id: "call_a", name: "http_get", arguments: { url: web.url("/a") } },
        { id: "call_b", name: "http_get", arguments: { url: web.url("/b") } },
        { id: "call_c", name: "http_get", arguments: { url: web.url("/c") } },
      ]),
    );
    const res = await ask(["fetch a, b and c", "--allow-host", web.hostPort, "--json"]);
    expect(res.code, describeRun(res)).toBe(0);
    expect(parseJson(res).status).toBe("done");
    expect(web.count("/a")).toBe(1);
    expect(web.count("/b")).toBe(3);
    expect(web.count("/c")).toBe(1);
    expect(web.hits.filter((h) => h.path === "/b").map((h) => h.status)).toEqual([503, 503, 200]);
    // Turn 1 and turn 2 only: the turn that asked for the tools was not repeated.
    expect(fake.count()).toBe(2);
    expect(toolResultsOf(1)).toEqual({
      call_a: "HTTP 200 OK\nok /a",
      call_b: "HTTP 200 OK\nok /b",
      call_c: "HTTP 200 OK\nok /c",
    });
  });
});

describe("pagent ask: tool failures are results", () => {
  it("hands a tool that always fails to the model as an error and still answers", async () => {
    web.route("/down", { alwaysFail: true, failStatus: 503 });
    fake.setResponder(
      toolsThenAnswer([
        { id: "call_down", name: "http_get", arguments: { url: web.url("/down") } },
        { id: "call_missing", name: "read_file", arguments: { path: "no-such-file.txt" } },
      ]),
    );
    const res = await ask([
      "fetch and read",
      "--allow-host",
      web.hostPort,
      "--retries",
      "2",
      "--json",
    ]);
    expect(res.code, describeRun(res)).toBe(0);
    const out = parseJson(res);
    expect(out.status).toBe("done");
    expect(out.result.answer).toBe(DEFAULT_ANSWER);
    expect(web.count("/down")).toBe(2);
    expect(fake.count()).toBe(2);
    const results = toolResultsOf(1);
    expect(results.call_down).toMatch(/^error/);
    expect(results.call_down).toContain("503");
    expect(results.call_missing).toMatch(/^error/);
    expect(results.call_missing).toContain("no such file");
  });

  it("refuses paths outside the roots, escaping symlinks and hosts not allowed", async () => {
    const base = realpathSync(mkdtempSync(path.join(tmpdir(), "pagent-ask-roots-")));
    try {
      const root = path.join(base, "root");
      mkdirSync(root);
      writeFileSync(path.join(base, "x"), "TOP-SECRET-X");
      writeFileSync(path.join(base, "secret.txt"), "TOP-SECRET-FILE");
      writeFileSync(path.join(root, "inside.txt"), "inside text");
      symlinkSync(path.join(base, "secret.txt"), path.join(root, "link"));
      fake.setResponder(
        toolsThenAnswer([
          { id: "call_up", name: "read_file", arguments: { path: "../x" } },
          {
            id: "call_abs",
            name: "read_file",
            arguments: { path: path.join(base, "secret.txt") },
          },
          { id: "call_link", name: "read_file", arguments: { path: "link" } },
          { id: "call_ok", name: "read_file", arguments: { path: "inside.txt" } },
          {
            id: "call_host",
            name: "http_get",
            arguments: { url: `http://localhost:${web.port}/a` },
          },
        ]),
      );
      const res = await ask(
        ["read things", "--allow-root", root, "--allow-host", web.hostPort, "--json"],
        { cwd: root },
      );
      expect(res.code, describeRun(res)).toBe(0);
      expect(parseJson(res).status).toBe("done");
      const results = toolResultsOf(1);
      for (const id of ["call_up", "call_abs", "call_link"]) {
        expect(results[id], id).toMatch(/^error/);
        expect(results[id], id).toMatch(/outside|refused/);
        expect(results[id], id).not.toContain("TOP-SECRET");
      }
      expect(results.call_ok).toContain("inside text");
      expect(results.call_host).toMatch(/^error/);
      expect(results.call_host).toMatch(/not allowed|refused/);
      expect(web.count()).toBe(0);
    } finally {
      rmSync(base, { recursive: true, force: true });
    }
  });

  it("runs a user command tool with its arguments and enforces its timeout", async () => {
    const config = path.join(workDir, TOOLS_CONFIG);
    fake.setResponder(
      toolsThenAnswer([
        { id: "call_echo", name: "echoargs", arguments: { word: "hello" } },
        { id: "call_sleep", name: "sleeper", arguments: {} },
      ]),
    );
    const started = Date.now();
    const res = await ask(["use the tools", "--config", config, "--json"]);
    const wall = Date.now() - started;
    expect(res.code, describeRun(res)).toBe(0);
    expect(parseJson(res).status).toBe("done");
    const offered = (fake.requests[0]?.body as { tools?: { function: { name: string } }[] }).tools;
    expect(offered?.map((t) => t.function.name)).toEqual(
      expect.arrayContaining(["echoargs", "sleeper", "calculator"]),
    );
    const results = toolResultsOf(1);
    expect(results.call_echo).toBe("echo:hello:hello");
    expect(results.call_sleep).toMatch(/^error/);
    expect(results.call_sleep).toMatch(/timed out|timeout/);
    // The 10 s sleep was cut off at 500 ms.
    expect(wall).toBeLessThan(9_000);
    console.log(`[ask e2e] command tools with a 500 ms timeout: CLI wall ${wall} ms`);
  });

  it("refuses config tools that shadow a built-in or cannot be built, before submitting", async () => {
    const shadow = path.join(workDir, "shadow.config.json");
    writeFileSync(
      shadow,
      JSON.stringify({ tools: { calculator: { argv: [process.execPath, "-e", "1"] } } }),
    );
    const started = Date.now();
    const res = await ask(["what is 2+3", "--config", shadow, "--json"]);
    expect(res.code, describeRun(res)).toBe(2);
    expect(res.stderr).toMatch(/calculator.*built-in/);
    const badName = path.join(workDir, "badname.config.json");
    writeFileSync(
      badName,
      JSON.stringify({ tools: { "two words": { argv: [process.execPath, "-e", "1"] } } }),
    );
    const bad = await ask(["hello", "--config", badName, "--json"]);
    expect(bad.code, describeRun(bad)).toBe(2);
    expect(bad.stderr).toMatch(/two words/);
    expect(Date.now() - started).toBeLessThan(15_000);
    expect(fake.count()).toBe(0);
  });

  it("gives the model an error for an unknown tool and for invalid arguments", async () => {
    fake.setResponder(
      toolsThenAnswer([
        { id: "call_unknown", name: "teleport", arguments: { to: "mars" } },
        { id: "call_bad", name: "calculator", arguments: { expr: 1 } },
        { id: "call_good", name: "calculator", arguments: { expression: "17*23" } },
        { id: "call_badjson", name: "calculator", arguments: "{expression: 1+" },
      ]),
    );
    const res = await ask(["compute", "--json"]);
    expect(res.code, describeRun(res)).toBe(0);
    const out = parseJson(res);
    expect(out.status).toBe("done");
    expect(out.errors).toEqual({});
    const results = toolResultsOf(1);
    expect(results.call_unknown).toMatch(/^error/);
    expect(results.call_unknown).toContain("unknown tool");
    expect(results.call_unknown).toContain("teleport");
    expect(results.call_bad).toMatch(/^error/);
    expect(results.call_bad).toMatch(/^error: invalid arguments for calculator: /);
    expect(results.call_bad?.match(/invalid arguments/g)).toHaveLength(1);
    expect(results.call_bad).toMatch(/expression/);
    expect(results.call_good).toBe("391");
    expect(results.call_badjson).toMatch(/^error/);
    expect(results.call_badjson).toContain("invalid arguments");
    expect(results.call_badjson).toContain("JSON");
    // Every call of the turn was answered, in the order the model made them.
    expect(Object.keys(results)).toEqual(["call_unknown", "call_bad", "call_good", "call_badjson"]);
  });

  it("answers a turn whose only call has unparseable arguments instead of ending the job", async () => {
    fake.setResponder(
      toolsThenAnswer([{ id: "call_badjson", name: "calculator", arguments: "{expression: 1+" }]),
    );
    const res = await ask(["compute", "--json"]);
    expect(res.code, describeRun(res)).toBe(0);
    const out = parseJson(res);
    expect(out.status).toBe("done");
    expect(out.result.answer).toBe(DEFAULT_ANSWER);
    expect(fake.count()).toBe(2);
    const results = toolResultsOf(1);
    expect(Object.keys(results)).toEqual(["call_badjson"]);
    expect(results.call_badjson).toMatch(
      /^error: invalid arguments for calculator: not valid JSON/,
    );
    // The history sent back is well formed: the assistant message carries the call it answers.
    const assistant = messagesOf(1).find((m) => m.role === "assistant");
    expect(assistant?.tool_calls).toMatchObject([{ id: "call_badjson" }]);
  });
});

describe("pagent ask: limits and models", () => {
  it("fails with exit 1, a clear error and the partial transcript after --max-steps", async () => {
    fake.setResponder(() => ({
      toolCalls: [{ name: "calculator", arguments: { expression: "1+1" } }],
    }));
    const res = await ask(["loop forever", "--max-steps", "2", "--json"]);
    expect(res.code, describeRun(res)).toBe(1);
    const out = parseJson(res);
    expect(out.status).toBe("failed");
    expect(out.result.answer).toBeNull();
    expect(out.errors.agent?.message).toMatch(/stopped after 2 steps/);
    expect(out.errors.agent?.message).toContain("--max-steps");
    expect(out.result.transcript.map((m) => m.role)).toEqual(["human", "ai", "tool", "ai", "tool"]);
    expect(out.result.transcript[2]?.content).toBe("2");
    expect(fake.count()).toBe(2);

    // People see it too (human mode, not a TTY).
    fake.reset();
    const human = await ask(["loop forever", "--max-steps", "2"]);
    expect(human.code, describeRun(human)).toBe(1);
    expect(`${human.stdout}\n${human.stderr}`).toMatch(/stopped after 2 steps/);
  });

  it("answers offline with --model local, calling calculator and clock in one turn", async () => {
    const res = await runCli(
      [
        "ask",
        "what is 17*23 and what time is it in UTC",
        "--model",
        "local",
        "--ndjson",
        ...connectArgs(),
      ],
      { timeoutMs: 120_000, cwd: workDir },
    );
    expect(res.code, describeRun(res)).toBe(0);
    const evs = events(res);
    const turn1Done = evs.findIndex((e) => e.type === "task.done" && e.task === "turn-1");
    const toolQueued = evs
      .map((e, i) => ({ e, i }))
      .filter(({ e }) => e.type === "task.queued" && e.kind === "tool");
    expect(toolQueued.map(({ e }) => e.name)).toEqual(["calculator", "clock"]);
    expect(toolQueued.map(({ e }) => e.args)).toEqual([
      { expression: "17*23" },
      { timezone: "UTC" },
    ]);
    expect(turn1Done).toBeGreaterThanOrEqual(0);
    for (const { i } of toolQueued) expect(i).toBeGreaterThan(turn1Done);
    const turn2Queued = evs.findIndex((e) => e.type === "task.queued" && e.task === "turn-2");
    for (const { i } of toolQueued) expect(i).toBeLessThan(turn2Queued);
    const done = evs.at(-1)!;
    expect(done.type).toBe("job.done");
    expect(done.status).toBe("done");
    const answer = (done.result as { answer: string }).answer;
    expect(answer).toContain("391");
    expect(answer).toMatch(/UTC/);
    expect(fake.count()).toBe(0);
    const submitted = evs.find((e) => e.type === "job.submitted");
    expect(submitted?.model).toBe("local");
  });

  it("reports tool names, arguments and per-turn and total token usage in --ndjson", async () => {
    fake.setResponder((req) =>
      req.toolResults.length > 0
        ? { content: "42 and 3 words", usage: { prompt_tokens: 13, completion_tokens: 5 } }
        : {
            toolCalls: [
              { id: "call_calc", name: "calculator", arguments: { expression: "6*7" } },
              { id: "call_wc", name: "word_count", arguments: { text: "a b c" } },
            ],
            usage: { prompt_tokens: 11, completion_tokens: 7 },
          },
    );
    const res = await ask(["compute and count", "--ndjson"]);
    expect(res.code, describeRun(res)).toBe(0);
    const evs = events(res);
    for (const e of evs) {
      expect(e.v).toBe(1);
      expect(typeof e.job).toBe("string");
      expect(Number.isNaN(Date.parse(e.ts))).toBe(false);
    }
    expect(evs[0]?.type).toBe("job.submitted");
    const job = evs[0]!.job;
    expect(evs.every((e) => e.job === job)).toBe(true);

    const queuedTools = evs.filter((e) => e.type === "task.queued" && e.kind === "tool");
    expect(queuedTools.map((e) => ({ task: e.task, name: e.name, args: e.args }))).toEqual([
      { task: "call_calc", name: "calculator", args: { expression: "6*7" } },
      { task: "call_wc", name: "word_count", args: { text: "a b c" } },
    ]);
    const toolDone: Record<string, unknown> = {};
    for (const e of evs) {
      if (e.type === "task.done" && e.task !== "turn-1" && e.task !== "turn-2") {
        toolDone[String(e.task)] = e.output;
      }
    }
    expect(toolDone).toEqual({ call_calc: "42", call_wc: "words: 3\ncharacters: 5\nlines: 1" });

    const turnUsage = (task: string) =>
      evs.find((e) => e.type === "task.done" && e.task === task)?.usage;
    expect(turnUsage("turn-1")).toEqual({ input: 11, output: 7, total: 18 });
    expect(turnUsage("turn-2")).toEqual({ input: 13, output: 5, total: 18 });
    const done = evs.at(-1)!;
    expect(done.type).toBe("job.done");
    expect(done.usage).toEqual({ input: 24, output: 12, total: 36 });
    expect((done.result as { answer: string }).answer).toBe("42 and 3 words");
  });
});

describe("pagent ask: inputs", () => {
  it("reads the prompt from stdin with -", async () => {
    const res = await ask(["-", "--json"], { input: "what is on stdin?\n" });
    expect(res.code, describeRun(res)).toBe(0);
    const out = parseJson(res);
    expect(out.input).toBe("-");
    expect(out.result.answer).toBe(DEFAULT_ANSWER);
    expect(fake.requests[0]?.body).toMatchObject({
      messages: [{ role: "user", content: "what is on stdin?\n" }],
    });
  });

  it("refuses an empty prompt with exit 2", async () => {
    const empty = await ask(["", "--json"]);
    expect(empty.code, describeRun(empty)).toBe(2);
    expect(empty.stderr).toMatch(/empty/);
    const blankStdin = await ask(["-", "--json"], { input: "  \n" });
    expect(blankStdin.code, describeRun(blankStdin)).toBe(2);
    expect(fake.count()).toBe(0);
  });

  it("sends --system to the model as a system message", async () => {
    const res = await ask(["hello", "--system", "You answer in haiku.", "--json"]);
    expect(res.code, describeRun(res)).toBe(0);
    const messages = messagesOf(0);
    expect(messages[0]).toMatchObject({ role: "system", content: "You answer in haiku." });
    expect(messages[1]).toMatchObject({ role: "user", content: "hello" });
  });

  it("attaches to the same job with --id and makes no new model calls", async () => {
    const id = `ask-e2e-${Date.now()}`;
    fake.setResponder(
      toolsThenAnswer([{ name: "calculator", arguments: { expression: "2+2" } }], "four"),
    );
    const first = await ask(["add", "--id", id, "--json"]);
    expect(first.code, describeRun(first)).toBe(0);
    expect(parseJson(first).job).toBe(id);
    expect(fake.count()).toBe(2);

    const second = await ask(["add", "--id", id, "--ndjson"]);
    expect(second.code, describeRun(second)).toBe(0);
    const evs = events(second);
    expect(evs[0]).toMatchObject({ type: "job.attached", job: id });
    expect(evs.some((e) => e.type === "job.submitted")).toBe(false);
    const done = evs.at(-1)!;
    expect(done).toMatchObject({ type: "job.done", status: "done", job: id });
    expect((done.result as { answer: string }).answer).toBe("four");
    expect(fake.count()).toBe(2);
  });

  it("refuses an unknown tool in --tools with exit 2", async () => {
    const res = await ask(["hello", "--tools", "calculator,nope", "--json"]);
    expect(res.code, describeRun(res)).toBe(2);
    expect(res.stderr).toMatch(/unknown tool nope/);
    expect(fake.count()).toBe(0);
  });
});
