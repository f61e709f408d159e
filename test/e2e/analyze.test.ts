import { mkdtempSync, mkdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { z } from "zod";
import { parseNdjson, runCli, type CliOptions, type CliResult } from "../helpers/cli.js";
import type { FakeOpenAI } from "../helpers/fake-openai.js";
import {
  analysisOf,
  analysisOfSystem,
  countByAnalysis,
  inputOf,
  maxDistinctInFlight,
  messagesOf,
  overlaps,
  schemaAnswer,
} from "../helpers/request-log.js";
import type { TestRestate } from "../helpers/restate.js";
import { useConnectedStack } from "../helpers/stack.js";

let restate: TestRestate;
let fake: FakeOpenAI;
let dir: string;

const stack = useConnectedStack({
  name: "analyze",
  serveEnv: { OPENAI_API_KEY: "sk-test-key" },
  respond: schemaAnswer,
  startTimeoutMs: 90_000,
  started: (parts) => ({ restate, fake, dir } = parts),
});

const BUILTINS = ["sentiment", "key-points", "summary"];

/** Connect-mode flags for the test's Restate server. */
const connect = (): string[] => stack.connectFlags;

/** `pagent analyze ARGS` against the fake model, in connect mode. */
function analyze(args: string[], options: CliOptions = {}): Promise<CliResult> {
  return stack.cli(["analyze", ...args, "--model", "fake", "--base-url", fake.baseUrl], options);
}

let unique = 0;
/** A text no other test analyzes, so content-addressed job ids never collide. */
function uniqueText(what: string): string {
  unique++;
  return `${what} (${unique}-${process.pid}-${Date.now()}): the launch went well and customers liked it.`;
}

function writeTemp(name: string, content: string | Buffer): string {
  const file = path.join(dir, name);
  writeFileSync(file, content);
  return file;
}

interface JobJson {
  job: string | null;
  status: string;
  input: string;
  model?: { name: string; offline?: boolean };
  result: Record<string, unknown> | null;
  errors: Record<string, { message: string }>;
  usage: { total: number };
}

function parseJson<T = JobJson>(res: CliResult): T {
  try {
    return JSON.parse(res.stdout) as T;
  } catch (error) {
    throw new Error(
      `stdout is not JSON (${(error as Error).message})\nexit ${res.code}\nstdout: ${res.stdout}\nstderr: ${res.stderr}`,
    );
  }
}

function explain(res: CliResult): string {
  return `exit ${res.code}\nstdout: ${res.stdout}\nstderr: ${res.stderr}`;
}

/** Job objects in Restate's state table (one per submitted job). */
async function jobCount(): Promise<number> {
  const rows = await restate.admin.query<{ n: number }>(
    "SELECT COUNT(*) AS n FROM state WHERE service_name = 'Job' AND key = 'view'",
  );
  return Number(rows[0]?.n ?? 0);
}

describe("analyze: parallel analyses", () => {
  it("runs the three analyses' LLM calls at the same time", async () => {
    fake.setResponder((req) => schemaAnswer(req, { delayMs: 1000 }));
    const started = performance.now();
    const res = await analyze(["--text", uniqueText("overlap"), "--json"]);
    const wall = performance.now() - started;
    expect(res.code, explain(res)).toBe(0);
    const out = parseJson(res);
    expect(out.status).toBe("done");
    expect(Object.keys(out.result!)).toEqual(BUILTINS);

    const log = fake.requests;
    expect(log).toHaveLength(3);
    expect(countByAnalysis(log)).toEqual({ sentiment: 1, "key-points": 1, summary: 1 });
    for (const a of log) for (const b of log) if (a !== b) expect(overlaps(a, b)).toBe(true);
    const span = Math.max(...log.map((e) => e.endedAt!)) - Math.min(...log.map((e) => e.startedAt));
    const startSpread =
      Math.max(...log.map((e) => e.startedAt)) - Math.min(...log.map((e) => e.startedAt));
    console.log(
      `[overlap] LLM span ${span.toFixed(0)} ms, start spread ${startSpread.toFixed(0)} ms, job ms ${(out as unknown as { ms: number }).ms}, CLI wall ${wall.toFixed(0)} ms`,
    );
    // Three 1 s calls one after the other would take 3 s; together they take just over 1 s.
    expect(span).toBeLessThan(1800);
    expect((out as unknown as { ms: number }).ms).toBeLessThan(2000);
  });
});

describe("analyze: retries and failures", () => {
  it("retries a failing analysis without re-running the others", async () => {
    let sentimentCalls = 0;
    fake.setResponder((req) => {
      if (analysisOfSystem(req.system) === "sentiment" && ++sentimentCalls <= 2) {
        return { status: 500 };
      }
      return schemaAnswer(req, { delayMs: 100 });
    });
    const res = await analyze(["--text", uniqueText("retry"), "--ndjson", "--retries", "5"]);
    expect(res.code, explain(res)).toBe(0);
    const events = parseNdjson(res.stdout);
    const of = (type: string, name: string) =>
      events.filter((e) => e.type === type && e.name === name);
    expect(of("task.retrying", "sentiment").length).toBeGreaterThanOrEqual(1);
    expect(String(of("task.retrying", "sentiment")[0]!.error)).toMatch(/500/);
    expect(of("task.done", "sentiment")).toHaveLength(1);
    for (const other of ["key-points", "summary"]) {
      expect(of("task.retrying", other)).toHaveLength(0);
      expect(of("task.done", other)).toHaveLength(1);
    }
    const last = events.at(-1)!;
    expect(last.type).toBe("job.done");
    expect(last.status).toBe("done");
    expect(countByAnalysis(fake.requests)).toEqual({
      sentiment: 3,
      "key-points": 1,
      summary: 1,
    });
  });

  it("reports a permanently failing analysis with the others' results (exit 3)", async () => {
    fake.setResponder((req) =>
      analysisOfSystem(req.system) === "summary"
        ? { status: 400, body: { error: { message: "summary is not allowed here", type: "x" } } }
        : schemaAnswer(req),
    );
    const text = uniqueText("terminal failure");
    const res = await analyze(["--text", text, "--json"]);
    expect(res.code, explain(res)).toBe(3);
    const out = parseJson(res);
    expect(out.status).toBe("partial");
    expect(Object.keys(out.result!)).toEqual(["sentiment", "key-points"]);
    expect(Object.keys(out.errors)).toEqual(["summary"]);
    expect(out.errors.summary!.message).toMatch(/HTTP 400/);
    expect(out.errors.summary!.message).toMatch(/summary is not allowed here/);
    // HTTP 400 is terminal: the summary's request was not retried.
    expect(countByAnalysis(fake.requests)).toEqual({ sentiment: 1, "key-points": 1, summary: 1 });

    // In human mode (same job, attached) the error is shown next to the other results.
    const human = await analyze(["--text", text]);
    expect(human.code, explain(human)).toBe(3);
    expect(human.stdout).toMatch(/sentiment:/);
    expect(human.stdout).toMatch(/key-points:/);
    expect(human.stdout).toMatch(/summary: failed: .*HTTP 400/);
    expect(fake.requests).toHaveLength(3);
  });
});

describe("analyze: job identity", () => {
  it("attaches to the same job on a rerun; --fresh and --id start new ones", async () => {
    const text = uniqueText("idempotent");
    const first = await analyze(["--text", text, "--json"]);
    expect(first.code, explain(first)).toBe(0);
    expect(fake.requests).toHaveLength(3);
    const firstOut = parseJson(first);

    fake.reset();
    const second = await analyze(["--text", text, "--json"]);
    expect(second.code, explain(second)).toBe(0);
    expect(fake.requests).toHaveLength(0);
    expect(second.stdout).toBe(first.stdout);
    expect(parseJson(second).job).toBe(firstOut.job);

    const fresh = await analyze(["--text", text, "--json", "--fresh"]);
    expect(fresh.code, explain(fresh)).toBe(0);
    expect(fake.requests).toHaveLength(3);
    const freshOut = parseJson(fresh);
    expect(freshOut.job).not.toBe(firstOut.job);
    expect(freshOut.result).toEqual(firstOut.result);

    fake.reset();
    const key = `my-job-${process.pid}-${Date.now()}`;
    const withId = await analyze(["--text", text, "--json", "--id", key]);
    expect(withId.code, explain(withId)).toBe(0);
    expect(parseJson(withId).job).toBe(key);
    expect(fake.requests).toHaveLength(3);
  });
});

describe("analyze: batches", () => {
  it("keeps at most --concurrency jobs in flight and prints results in input order", async () => {
    const batchDir = path.join(dir, "batch");
    mkdirSync(batchDir);
    const stamp = `${process.pid}-${Date.now()}`;
    const files: string[] = [];
    for (let i = 0; i < 20; i++) {
      files.push(
        writeTemp(
          `batch/in-${String(i).padStart(2, "0")}.txt`,
          `Batch input ${i} ${stamp}: all good.`,
        ),
      );
    }
    // Not in name order, so input order is visibly the order given.
    const given = [...files.slice(10), ...files.slice(0, 10)].reverse();
    // Early inputs answer slower, so jobs finish out of input order.
    fake.setResponder((req) => {
      const n = Number(/Batch input (\d+)/.exec(req.lastUser)?.[1] ?? 0);
      return schemaAnswer(req, { delayMs: 150 + (n % 4) * 100 });
    });
    const res = await analyze([...given, "--concurrency", "4"], { timeoutMs: 240_000 });
    expect(res.code, explain(res)).toBe(0);

    const log = fake.requests;
    expect(log).toHaveLength(60);
    expect(fake.maxInFlight).toBeLessThanOrEqual(12);
    const distinct = maxDistinctInFlight(log, inputOf);
    console.log(
      `[batch] maxInFlight ${fake.maxInFlight}, max distinct inputs in flight ${distinct}`,
    );
    expect(distinct).toBeLessThanOrEqual(4);
    expect(distinct).toBeGreaterThanOrEqual(2);

    const headers = res.stdout.split("\n").filter((l) => l.startsWith("== "));
    expect(headers).toEqual(given.map((f) => `== ${f}`));

    // The same batch again with --json attaches to it and prints the array, in input order.
    fake.reset();
    const json = await analyze([...given, "--concurrency", "4", "--json"]);
    expect(json.code, explain(json)).toBe(0);
    const items = parseJson<JobJson[]>(json);
    expect(items).toHaveLength(20);
    expect(items.map((i) => i.input)).toEqual(given);
    for (const item of items) {
      expect(item.status).toBe("done");
      expect(Object.keys(item.result!)).toEqual(BUILTINS);
    }
    expect(new Set(items.map((i) => i.job)).size).toBe(20);
    expect(fake.requests).toHaveLength(0);
  }, 300_000);
});

describe("analyze: --ndjson", () => {
  // 400 ms calls are seen running; local-model tasks often finish between two polls.
  it.each([
    ["a slow model", "fake"],
    ["tasks that finish between polls", "local"],
  ])(
    "emits versioned events with job, type and ISO ts, ending with job.done (%s)",
    async (_what, model) => {
      fake.setResponder((req) => schemaAnswer(req, { delayMs: 400 }));
      const text = uniqueText("ndjson");
      const res =
        model === "local"
          ? await runCli(
              ["analyze", "--text", text, "--model", "local", "--ndjson", ...connect()],
              {
                timeoutMs: 120_000,
              },
            )
          : await analyze(["--text", text, "--ndjson"]);
      expect(res.code, explain(res)).toBe(0);
      const lines = res.stdout.split("\n").filter((l) => l.trim() !== "");
      const events = lines.map((line) => JSON.parse(line) as Record<string, unknown>);
      expect(events.length).toBeGreaterThan(5);
      const job = events[0]!.job;
      for (const event of events) {
        expect(event.v).toBe(1);
        expect(typeof event.type).toBe("string");
        expect(event.job).toBe(job);
        expect(typeof event.ts).toBe("string");
        expect(new Date(event.ts as string).toISOString()).toBe(event.ts);
      }
      expect(events[0]!.type).toBe("job.submitted");
      for (const name of BUILTINS) {
        const types = events.filter((e) => e.name === name).map((e) => e.type);
        expect(types, name).toEqual(["task.queued", "task.started", "task.done"]);
      }
      const last = events.at(-1)!;
      expect(last.type).toBe("job.done");
      expect(last.status).toBe("done");
      expect(Object.keys(last.result as object)).toEqual(BUILTINS);
      expect(events.filter((e) => e.type === "job.done")).toHaveLength(1);
    },
  );
});

describe("analyze: bad input", () => {
  const cases: [string, () => string[], RegExp][] = [
    ["a missing file", () => [path.join(dir, "does-not-exist.txt")], /no such file/],
    ["a directory", () => [dir], /is a directory/],
    ["an empty file", () => [writeTemp("empty.txt", "")], /empty/],
    ["a whitespace-only file", () => [writeTemp("blank.txt", "  \n\t \n")], /empty/],
    [
      "a binary file",
      () => [writeTemp("binary.bin", Buffer.from([0x50, 0x4b, 0x03, 0x04, 0x00, 0x00, 0x41]))],
      /binary/,
    ],
    ["a non-UTF-8 file", () => [writeTemp("latin.txt", Buffer.from([0xff, 0xfe, 0x41]))], /UTF-8/],
    [
      "a file over --max-bytes",
      () => [writeTemp("big.txt", "this text is longer than ten bytes"), "--max-bytes", "10"],
      /max-bytes/,
    ],
    ['--text ""', () => ["--text", ""], /empty/],
    [
      // Restate's ingress drops a request over 32 MiB: said before submitting, not as "fetch failed".
      "a 40 MB input with a raised --max-bytes",
      () => [writeTemp("huge.txt", "word ".repeat(8_000_000)), "--max-bytes", "100000000"],
      /the job is 38\.1 MiB as a request, over Restate's limit of 32\.0 MiB per request/,
    ],
    [
      "--task-timeout 0s",
      () => ["--text", uniqueText("zero"), "--task-timeout", "0s"],
      /longer than 0/,
    ],
  ];

  it.each(cases)("refuses %s with one line on stderr and exit 2", async (_what, args, pattern) => {
    const jobsBefore = await jobCount();
    const res = await analyze(args());
    expect(res.code, explain(res)).toBe(2);
    const lines = res.stderr.split("\n").filter((l) => l.trim() !== "");
    expect(lines, res.stderr).toHaveLength(1);
    expect(lines[0]).toMatch(/^pagent: /);
    expect(lines[0]).toMatch(pattern);
    expect(res.stdout).toBe("");
    expect(fake.requests).toHaveLength(0);
    expect(await jobCount()).toBe(jobsBefore);
  });

  it("shows a file name with a newline escaped, on one header line", async () => {
    const odd = writeTemp("two\nlines.txt", uniqueText("odd name"));
    const good = writeTemp("plain.txt", uniqueText("plain name"));
    const human = await analyze([odd, good]);
    expect(human.code, explain(human)).toBe(0);
    expect(human.stdout).toContain(`== ${JSON.stringify(odd)}\n`);
    expect(human.stdout.split("\n")).not.toContain("lines.txt");
    const json = parseJson<JobJson[]>(await analyze([odd, good, "--json"]));
    expect(json[0]!.input).toBe(odd);
  });

  it("runs the good input of a batch and reports the bad one (exit 3)", async () => {
    const good = writeTemp("good.txt", uniqueText("good input"));
    const bad = writeTemp("bad.bin", Buffer.from([0x00, 0x01, 0x02]));
    const human = await analyze([bad, good]);
    expect(human.code, explain(human)).toBe(3);
    expect(human.stderr).toContain(`pagent: ${bad}: input looks binary`);
    expect(human.stdout).toContain(`== ${bad}`);
    expect(human.stdout).toMatch(/refused: .*binary/);
    expect(human.stdout).toContain(`== ${good}`);
    expect(human.stdout).toMatch(/summary:/);
    expect(human.stdout.indexOf(`== ${bad}`)).toBeLessThan(human.stdout.indexOf(`== ${good}`));
    expect(fake.requests).toHaveLength(3);
    expect(new Set(fake.requests.map(inputOf)).size).toBe(1);

    const json = await analyze([bad, good, "--json"]);
    expect(json.code, explain(json)).toBe(3);
    const items = parseJson<JobJson[]>(json);
    expect(items).toHaveLength(2);
    expect(items[0]).toMatchObject({ job: null, status: "failed", input: bad, result: null });
    expect(items[0]!.errors.input!.message).toMatch(/binary/);
    expect(items[1]).toMatchObject({ status: "done", input: good });
    expect(Object.keys(items[1]!.result!)).toEqual(BUILTINS);
  });
});

describe("analyze: models", () => {
  it("--model local runs offline without a key and gives the same result twice", async () => {
    const text =
      "The new release is excellent and fast. Support was slow, but the team fixed every bug quickly. Customers are happy.";
    const run = (extra: string[]) =>
      runCli(["analyze", "--text", text, "--model", "local", "--json", ...extra, ...connect()], {
        env: { OPENAI_API_KEY: undefined, OPENAI_BASE_URL: undefined },
        timeoutMs: 120_000,
      });
    const first = await run([]);
    expect(first.code, explain(first)).toBe(0);
    const second = await run(["--fresh"]);
    expect(second.code, explain(second)).toBe(0);
    const a = parseJson(first);
    const b = parseJson(second);
    expect(a.model).toMatchObject({ name: "local", offline: true });
    expect(a.model).not.toHaveProperty("baseUrl");
    expect(b.job).not.toBe(a.job);
    expect(Object.keys(a.result!)).toEqual(BUILTINS);
    expect(b.result).toEqual(a.result);
    expect(fake.requests).toHaveLength(0);
  });

  it("fails with exit 2 and says how to configure a model when there is none", async () => {
    const cwd = mkdtempSync(path.join(dir, "no-model-"));
    const jobsBefore = await jobCount();
    const res = await runCli(["analyze", "--text", uniqueText("no model"), ...connect()], {
      cwd,
      timeoutMs: 60_000,
    });
    expect(res.code, explain(res)).toBe(2);
    const lines = res.stderr.split("\n").filter((l) => l.trim() !== "");
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/no model/);
    expect(lines[0]).toMatch(/--model/);
    expect(res.stdout).toBe("");
    expect(fake.requests).toHaveLength(0);
    expect(await jobCount()).toBe(jobsBefore);
  });
});

describe("analyze: custom analyses", () => {
  it("runs a --analysis flag's analysis next to the built-ins", async () => {
    const res = await analyze([
      "--text",
      uniqueText("tone"),
      "--analysis",
      "tone=Describe the tone in one word",
      "--json",
    ]);
    expect(res.code, explain(res)).toBe(0);
    const out = parseJson(res);
    expect(Object.keys(out.result!)).toEqual([...BUILTINS, "tone"]);
    expect(out.result!.tone).toEqual({ result: expect.any(String) as unknown });
    const extra = { tone: /Describe the tone in one word/ };
    expect(countByAnalysis(fake.requests, extra)).toEqual({
      sentiment: 1,
      "key-points": 1,
      summary: 1,
      tone: 1,
    });
  });

  it("runs a config file's analysis with its JSON schema", async () => {
    const schema = {
      type: "object",
      properties: {
        entities: { type: "array", items: { type: "string", minLength: 2 }, minItems: 2 },
        count: { type: "integer", minimum: 1, maximum: 50 },
        kind: { type: "string", enum: ["people", "places"] },
      },
      required: ["entities", "count", "kind"],
      additionalProperties: false,
    };
    const config = writeTemp(
      "pagent.config.json",
      JSON.stringify({
        analyses: { entities: { instruction: "List the named entities in the text.", schema } },
      }),
    );
    const res = await analyze(["--text", uniqueText("entities"), "--config", config, "--json"]);
    expect(res.code, explain(res)).toBe(0);
    const out = parseJson(res);
    expect(Object.keys(out.result!)).toEqual([...BUILTINS, "entities"]);
    const entitiesRequest = fake.requests.find(
      (e) => analysisOf(e, { entities: /named entities/ }) === "entities",
    )!;
    expect(
      (entitiesRequest.body as { response_format: { json_schema: { schema: unknown } } })
        .response_format.json_schema.schema,
    ).toEqual(schema);
    const parsed = z
      .fromJSONSchema(schema as Parameters<typeof z.fromJSONSchema>[0])
      .safeParse(out.result!.entities);
    expect(parsed.success, JSON.stringify(out.result!.entities)).toBe(true);
    expect(out.result!.entities).toMatchObject({ kind: "people", count: 1 });
  });

  it("--only sentiment runs only sentiment", async () => {
    const res = await analyze(["--text", uniqueText("only"), "--only", "sentiment", "--json"]);
    expect(res.code, explain(res)).toBe(0);
    const out = parseJson(res);
    expect(Object.keys(out.result!)).toEqual(["sentiment"]);
    expect(fake.requests).toHaveLength(1);
    expect(analysisOf(fake.requests[0]!)).toBe("sentiment");
  });
});

describe("analyze: structured output validation", () => {
  it("sends an invalid answer back with the validation error until it is valid", async () => {
    let summaryCalls = 0;
    fake.setResponder((req) => {
      if (analysisOfSystem(req.system) === "summary") {
        summaryCalls++;
        // First not JSON at all, then JSON of the wrong shape, then a valid answer.
        if (summaryCalls === 1) return { content: "not json" };
        if (summaryCalls === 2) return { json: { summary: 42 } };
      }
      return schemaAnswer(req);
    });
    const res = await analyze(["--text", uniqueText("invalid twice"), "--json"]);
    expect(res.code, explain(res)).toBe(0);
    const out = parseJson(res);
    expect(out.status).toBe("done");
    expect(out.result!.summary).toEqual({ summary: expect.any(String) as unknown });
    const summaries = fake.requests.filter((e) => analysisOf(e) === "summary");
    expect(summaries).toHaveLength(3);
    const third = messagesOf(summaries[2]!);
    const followUps = third.filter((m) => m.role === "user").slice(1);
    expect(followUps).toHaveLength(2);
    expect(String(followUps[0]!.content)).toMatch(/That answer was invalid: not valid JSON/);
    expect(String(followUps[1]!.content)).toMatch(/That answer was invalid: .*summary/);
    expect(third.filter((m) => m.role === "assistant").map((m) => m.content)).toEqual([
      "not json",
      JSON.stringify({ summary: 42 }),
    ]);
    // The model's bad answers are not transport failures: no blind retry of the same request.
    expect(summaries.map((e) => messagesOf(e).length)).toEqual([2, 4, 6]);
    expect(countByAnalysis(fake.requests)).toEqual({ sentiment: 1, "key-points": 1, summary: 3 });
  });

  it("fails only that task when the answer never validates (exit 3)", async () => {
    fake.setResponder((req) =>
      analysisOfSystem(req.system) === "summary" ? { content: "not json" } : schemaAnswer(req),
    );
    const res = await analyze(["--text", uniqueText("always invalid"), "--json"]);
    expect(res.code, explain(res)).toBe(3);
    const out = parseJson(res);
    expect(out.status).toBe("partial");
    expect(Object.keys(out.result!)).toEqual(["sentiment", "key-points"]);
    expect(out.errors.summary!.message).toMatch(/no valid answer in 3 tries: not valid JSON/);
    expect(countByAnalysis(fake.requests)).toEqual({ sentiment: 1, "key-points": 1, summary: 3 });
  });
});
