import { Writable } from "node:stream";
import { describe, expect, it } from "vitest";
import type { BatchResult, JobResult } from "../../services/types.js";
import type { EventBody } from "../../src/output/events.js";
import { formatDuration } from "../../services/duration.js";
import { describeEvent, renderAnalysis } from "../../src/output/human.js";
import { createReporter } from "../../src/output/reporter.js";
import { detectTerminal, type Terminal } from "../../src/output/terminal.js";
import type { OutputMode } from "../../src/config.js";

// eslint-disable-next-line no-control-regex
const ANSI = /\u001b\[/;

class Capture extends Writable {
  text = "";
  override _write(chunk: Buffer, _encoding: string, callback: () => void): void {
    this.text += chunk.toString();
    callback();
  }
}

function setup(
  mode: OutputMode,
  terminal: Terminal = { color: false, stdoutColor: false, live: false },
  quiet = false,
) {
  const stdout = new Capture();
  const stderr = new Capture();
  const reporter = createReporter({ mode, quiet, terminal, streams: { stdout, stderr } });
  return { reporter, stdout, stderr };
}

const usage = { input: 10, output: 20, total: 30 };

const jobResult: JobResult = {
  job: "an-1",
  kind: "analyze",
  status: "partial",
  input: "notes.txt",
  model: { name: "gpt-4o-mini" },
  result: {
    sentiment: { label: "positive", score: 0.8, reason: "upbeat tone" },
    "key-points": { points: ["ship on Friday", "hire two people"] },
  },
  errors: { summary: { message: "invalid answer after 3 rounds" } },
  usage,
  ms: 2500,
};

const batchResult: BatchResult = {
  job: "batch-1",
  kind: "batch",
  status: "partial",
  items: [
    jobResult,
    {
      job: null,
      status: "failed",
      input: "missing.txt",
      result: null,
      errors: { input: { message: "missing.txt: no such file" } },
      usage: { input: 0, output: 0, total: 0 },
    },
  ],
  usage,
  ms: 3000,
};

const events: EventBody[] = [
  { type: "job.submitted", kind: "analyze", input: "notes.txt", model: "gpt-4o-mini" },
  { type: "task.queued", task: "t1", name: "sentiment", kind: "analysis" },
  { type: "task.started", task: "t1", name: "sentiment", attempt: 1 },
  {
    type: "task.retrying",
    task: "t1",
    name: "sentiment",
    attempt: 2,
    maxAttempts: 5,
    error: "HTTP 503",
  },
  { type: "task.done", task: "t1", name: "sentiment", ms: 1200, output: {}, usage },
  { type: "task.failed", task: "t2", name: "summary", error: "invalid answer" },
];

describe("detectTerminal", () => {
  const tty = { stdoutIsTTY: true, stderrIsTTY: true, machineOutput: false };

  it("a plain TTY gets colour and live lines", () => {
    expect(detectTerminal({ ...tty, env: { TERM: "xterm-256color" } })).toMatchObject({
      color: true,
      live: true,
    });
  });

  it("no TTY: no colour, no live lines", () => {
    expect(
      detectTerminal({ env: {}, stdoutIsTTY: false, stderrIsTTY: false, machineOutput: false }),
    ).toMatchObject({ color: false, live: false });
  });

  it("NO_COLOR (non-empty) and --no-color turn colour off but keep live lines", () => {
    expect(detectTerminal({ ...tty, env: { NO_COLOR: "1" } })).toMatchObject({
      color: false,
      live: true,
    });
    expect(detectTerminal({ ...tty, env: {}, noColorFlag: true }).color).toBe(false);
    expect(detectTerminal({ ...tty, env: { NO_COLOR: "" } }).color).toBe(true);
  });

  it("NO_COLOR beats FORCE_COLOR", () => {
    expect(detectTerminal({ ...tty, env: { NO_COLOR: "1", FORCE_COLOR: "1" } }).color).toBe(false);
  });

  it("FORCE_COLOR gives colour without a TTY, but no live lines; FORCE_COLOR=0 does not", () => {
    const noTty = { stdoutIsTTY: false, stderrIsTTY: false, machineOutput: false };
    expect(detectTerminal({ ...noTty, env: { FORCE_COLOR: "1" } })).toMatchObject({
      color: true,
      live: false,
    });
    expect(detectTerminal({ ...noTty, env: { FORCE_COLOR: "0" } }).color).toBe(false);
  });

  it("CI keeps colour on a TTY but never live lines", () => {
    expect(detectTerminal({ ...tty, env: { CI: "true" } })).toMatchObject({
      color: true,
      live: false,
    });
    expect(detectTerminal({ ...tty, env: { CI: "false" } }).live).toBe(true);
  });

  it("TERM=dumb: no colour, no live lines", () => {
    expect(detectTerminal({ ...tty, env: { TERM: "dumb" } })).toMatchObject({
      color: false,
      live: false,
    });
  });

  it("--json/--ndjson never get colour nor live lines, even forced", () => {
    expect(
      detectTerminal({ ...tty, machineOutput: true, env: { FORCE_COLOR: "3", TERM: "xterm" } }),
    ).toMatchObject({ color: false, live: false });
  });

  // Bug: src/output/terminal.ts:24 ignores stdoutIsTTY. With `pagent analyze f > out.txt` on a
  // terminal, stderr is a TTY so color=true, and HumanReporter (one chalk for both streams,
  // human.ts:76) writes ANSI escapes into out.txt. SPEC.md: "Non-TTY stdout implies no colour".
  it("a redirected stdout gets no colour in the result written to it", () => {
    const terminal = detectTerminal({
      env: {},
      stdoutIsTTY: false,
      stderrIsTTY: true,
      machineOutput: false,
    });
    const { reporter, stdout } = setup("human", { ...terminal, live: false });
    reporter.result(jobResult);
    expect(stdout.text).not.toMatch(ANSI);
  });
});

describe("formatDuration", () => {
  it.each([
    [undefined, ""],
    [0, "0ms"],
    [999, "999ms"],
    [1000, "1.0s"],
    [1540, "1.5s"],
    [65_000, "65.0s"],
  ])("%j → %j", (ms, text) => {
    expect(formatDuration(ms)).toBe(text);
  });
});

describe("describeEvent", () => {
  it("queued, with a tool call's args shortened", () => {
    expect(describeEvent({ type: "task.queued", task: "t", name: "n", kind: "analysis" })).toEqual({
      state: "queued",
      text: "queued",
    });
    const long = describeEvent({
      type: "task.queued",
      task: "t",
      name: "calculator",
      kind: "tool",
      args: { expression: "1+".repeat(100) + "1" },
    });
    expect(long?.text.startsWith('queued {"expression":"1+1+')).toBe(true);
    expect(long!.text.length).toBeLessThanOrEqual("queued ".length + 60);
  });

  it("running, with the attempt after the first", () => {
    expect(describeEvent({ type: "task.started", task: "t", name: "n", attempt: 1 })).toEqual({
      state: "running",
      text: "running",
    });
    expect(describeEvent({ type: "task.started", task: "t", name: "n", attempt: 3 })?.text).toBe(
      "running (attempt 3)",
    );
  });

  it("retrying n/m with the last error", () => {
    expect(describeEvent(events[3]!)).toEqual({
      state: "retrying",
      text: "retrying 2/5: HTTP 503",
    });
    expect(
      describeEvent({ type: "task.retrying", task: "t", name: "n", attempt: 2, error: "x" })?.text,
    ).toBe("retrying 2: x");
  });

  it("done with time and tokens", () => {
    expect(describeEvent(events[4]!)).toEqual({ state: "done", text: "done · 1.2s · 30 tokens" });
    expect(describeEvent({ type: "task.done", task: "t", name: "n", output: 1 })?.text).toBe(
      "done",
    );
  });

  it("failed with the error", () => {
    expect(describeEvent(events[5]!)).toEqual({ state: "failed", text: "failed: invalid answer" });
  });

  it("job events are not task lines", () => {
    expect(describeEvent(events[0]!)).toBeUndefined();
  });
});

describe("renderAnalysis", () => {
  it("sentiment as a sentence with a two-decimal score", () => {
    expect(
      renderAnalysis("sentiment", { label: "negative", score: -0.5, reason: "complaints" }),
    ).toBe("negative (-0.50): complaints");
  });

  it("key points as bullets", () => {
    expect(renderAnalysis("key-points", { points: ["a", "b"] })).toBe("• a\n• b");
  });

  it("summary as its text", () => {
    expect(renderAnalysis("summary", { summary: "All good." })).toBe("All good.");
  });

  it("a free-text custom analysis as its text", () => {
    expect(renderAnalysis("tone", { result: "Formal." })).toBe("Formal.");
  });

  it("anything else (a custom analysis with a schema) as readable lines, not JSON", () => {
    expect(
      renderAnalysis("entities", { entities: ["Ada", "Bell Labs"], meta: { count: 2, ok: true } }),
    ).toBe("entities:\n  • Ada\n  • Bell Labs\nmeta:\n  count: 2\n  ok: true");
  });
});

describe("createReporter: ndjson", () => {
  it("writes one parseable line per event with v, type, job and ts, and nothing on stderr", () => {
    const { reporter, stdout, stderr } = setup("ndjson");
    for (const body of events) reporter.event("an-1", body);
    reporter.note("job an-1: http://localhost:9070/ui");
    reporter.close();
    const lines = stdout.text.trimEnd().split("\n");
    expect(lines).toHaveLength(events.length);
    lines.forEach((line, i) => {
      const parsed = JSON.parse(line) as Record<string, unknown>;
      expect(parsed).toMatchObject({ v: 1, job: "an-1", type: events[i]!.type });
      expect(new Date(parsed.ts as string).toISOString()).toBe(parsed.ts);
    });
    expect(JSON.parse(lines[3]!)).toMatchObject({ attempt: 2, maxAttempts: 5, error: "HTTP 503" });
    expect(stderr.text).toBe("");
  });

  it("ends with a job.done line for the result", () => {
    const { reporter, stdout } = setup("ndjson");
    reporter.result(jobResult);
    const lines = stdout.text.trimEnd().split("\n");
    expect(lines).toHaveLength(1);
    expect(JSON.parse(lines[0]!)).toMatchObject({
      v: 1,
      type: "job.done",
      job: "an-1",
      status: "partial",
      result: jobResult.result,
      usage,
      errors: jobResult.errors,
    });
  });

  it("a batch's job.done carries the items in input order", () => {
    const { reporter, stdout } = setup("ndjson");
    reporter.result(batchResult);
    const done = JSON.parse(stdout.text) as { job: string; result: { input: string }[] };
    expect(done.job).toBe("batch-1");
    expect(done.result.map((r) => r.input)).toEqual(["notes.txt", "missing.txt"]);
  });
});

describe("createReporter: json", () => {
  it("writes nothing for events and notes, then one compact JSON document", () => {
    const { reporter, stdout, stderr } = setup("json");
    for (const body of events) reporter.event("an-1", body);
    reporter.note("a note");
    expect(stdout.text).toBe("");
    reporter.result(jobResult);
    reporter.close();
    expect(JSON.parse(stdout.text)).toEqual(jobResult);
    expect(stdout.text).toBe(`${JSON.stringify(jobResult)}\n`);
    expect(stderr.text).toBe("");
  });

  it("a batch is an array, one entry per input in order, bad inputs included", () => {
    const { reporter, stdout } = setup("json");
    reporter.result(batchResult);
    const parsed = JSON.parse(stdout.text) as { input: string; job: string | null }[];
    expect(Array.isArray(parsed)).toBe(true);
    expect(parsed.map((p) => [p.input, p.job])).toEqual([
      ["notes.txt", "an-1"],
      ["missing.txt", null],
    ]);
  });
});

describe("createReporter: human", () => {
  it("--quiet writes only the result", () => {
    const { reporter, stdout, stderr } = setup(
      "human",
      { color: false, stdoutColor: false, live: false },
      true,
    );
    for (const body of events) reporter.event("an-1", body);
    reporter.note("job an-1");
    reporter.result(jobResult);
    reporter.close();
    expect(stderr.text).toBe("");
    expect(stdout.text).toContain("positive (0.80): upbeat tone");
  });

  it("without live lines: one progress line per change on stderr, the result on stdout", async () => {
    const { reporter, stdout, stderr } = setup("human");
    // One event per poll, as a running job reports them.
    for (const body of events) {
      reporter.event("an-1", body);
      await Promise.resolve();
    }
    reporter.note("job an-1 · pagent attach an-1");
    reporter.result(jobResult);
    reporter.close();

    const progress = stderr.text.trimEnd().split("\n");
    // queued is not worth a line of its own without a live display
    expect(progress).toHaveLength(5);
    expect(progress[0]).toMatch(/sentiment\s+running$/);
    expect(progress[1]).toMatch(/sentiment\s+retrying 2\/5: HTTP 503$/);
    expect(progress[2]).toMatch(/sentiment\s+done · 1\.2s · 30 tokens$/);
    expect(progress[3]).toMatch(/summary\s+failed: invalid answer$/);
    expect(progress[4]).toBe("job an-1 · pagent attach an-1");
    expect(stderr.text).not.toMatch(ANSI);

    expect(stdout.text).toBe(
      [
        "sentiment:",
        "  positive (0.80): upbeat tone",
        "key-points:",
        "  • ship on Friday",
        "  • hire two people",
        "summary: failed: invalid answer after 3 rounds",
        "",
      ].join("\n"),
    );
    expect(stdout.text).not.toContain("running");
  });

  it("without live lines: a task that started and finished within one poll (attach) has no running line", async () => {
    const { reporter, stderr } = setup("human");
    reporter.event("an-1", {
      type: "task.queued",
      task: "t1",
      name: "sentiment",
      kind: "analysis",
    });
    reporter.event("an-1", { type: "task.started", task: "t1", name: "sentiment", attempt: 1 });
    reporter.event("an-1", { type: "task.done", task: "t1", name: "sentiment", output: {} });
    reporter.event("an-1", { type: "task.started", task: "t2", name: "summary", attempt: 1 });
    await Promise.resolve();
    const lines = stderr.text.trimEnd().split("\n");
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatch(/sentiment\s+done$/);
    expect(lines[1]).toMatch(/summary\s+running$/);
  });

  it("with colour on, lines carry ANSI escapes", () => {
    const { reporter, stdout, stderr } = setup("human", {
      color: true,
      stdoutColor: true,
      live: false,
    });
    reporter.event("an-1", events[5]!);
    reporter.result(jobResult);
    expect(stderr.text).toMatch(ANSI);
    expect(stdout.text).toMatch(ANSI);
  });

  it("labels the offline local model in the result", () => {
    const { reporter, stdout } = setup("human");
    reporter.result({ ...jobResult, model: { name: "local", offline: true }, errors: {} });
    expect(stdout.text.split("\n")[0]).toMatch(/^\[model: local .*not an LLM\)\]$/);
  });

  it("a batch prints each input under its name, refused ones with their error", () => {
    const { reporter, stdout } = setup("human");
    reporter.result(batchResult);
    expect(stdout.text).toContain("== notes.txt\nsentiment:");
    expect(stdout.text).toContain("== missing.txt\nrefused: missing.txt: no such file");
    expect(stdout.text.indexOf("notes.txt")).toBeLessThan(stdout.text.indexOf("missing.txt"));
  });

  it("prints an ask job's answer", () => {
    const { reporter, stdout } = setup("human");
    reporter.result({
      ...jobResult,
      kind: "ask",
      result: { answer: "391", transcript: [] },
      errors: {},
    });
    expect(stdout.text).toBe("391\n");
  });
});

describe("human live view of a batch", () => {
  it("groups tasks by input under a running total and leaves every input's row on screen", () => {
    const { reporter, stderr } = setup("human", { color: false, stdoutColor: false, live: true });
    const inputs = Array.from({ length: 6 }, (_, i) => `in-${i}.txt`);
    const names = ["sentiment", "key-points", "summary"];
    reporter.event("b-1", {
      type: "job.submitted",
      kind: "batch",
      input: "6 inputs",
      model: "m",
      inputs: 6,
    });
    for (const [i, input] of inputs.entries()) {
      for (const name of names) {
        const task = { task: name, name, input };
        reporter.event(`an-${i}`, { type: "task.queued", kind: "analysis", ...task });
        reporter.event(`an-${i}`, { type: "task.started", attempt: 1, ...task });
        reporter.event(`an-${i}`, { type: "task.done", output: {}, ...task });
      }
      reporter.event(`an-${i}`, { type: "job.done", status: "done", result: {}, usage, input });
    }
    reporter.close();
    const rows = stderr.text
      // eslint-disable-next-line no-control-regex
      .replace(/\u001b\[[0-9;?]*[a-zA-Z]/g, "")
      .trimEnd()
      .split("\n")
      .slice(-6);
    // (The spinner's last frame is cleared with cursor codes, stripped here, so it may share a line.)
    for (const [i, input] of inputs.entries())
      expect(rows[i]!.endsWith(`✔ ${input}  sentiment ✔  key-points ✔  summary ✔`), rows[i]).toBe(
        true,
      );
  });
});

describe("human view of a long input's chunks", () => {
  const events = (reporter: ReturnType<typeof setup>["reporter"]) => {
    for (let chunk = 0; chunk < 3; chunk++) {
      const task = { task: `summary#${chunk}`, name: "summary", chunk };
      reporter.event("an-1", { type: "task.queued", kind: "analysis", ...task });
      reporter.event("an-1", { type: "task.started", attempt: 1, ...task });
    }
    const reduce = { task: "summary", name: "summary" };
    reporter.event("an-1", { type: "task.queued", kind: "analysis", ...reduce });
    reporter.event("an-1", {
      type: "task.retrying",
      task: "summary#1",
      name: "summary",
      chunk: 1,
      attempt: 1,
      maxAttempts: 5,
      error: "HTTP 429",
    });
    for (let chunk = 0; chunk < 3; chunk++)
      reporter.event("an-1", {
        type: "task.done",
        task: `summary#${chunk}`,
        name: "summary",
        chunk,
        output: {},
        ...(chunk !== 1 ? { reused: true as const } : {}),
      });
    return reduce;
  };

  it("live: one row per analysis with its chunks done / total and its reduce", () => {
    const { reporter, stderr } = setup("human", { color: false, stdoutColor: false, live: true });
    events(reporter);
    reporter.close();
    expect(stderr.text).toContain("summary          chunks 3/3 done, 2 reused · reduce queued");
    expect(stderr.text).not.toContain("summary#");
  });

  it("without a TTY: a chunk's retry, then one line as the reduce starts, then the reduce", async () => {
    const { reporter, stderr } = setup("human");
    const reduce = events(reporter);
    reporter.event("an-1", { type: "task.started", attempt: 1, ...reduce });
    await new Promise((r) => setTimeout(r, 0));
    reporter.event("an-1", { type: "task.done", output: {}, ...reduce });
    expect(stderr.text.split("\n")).toEqual([
      "↻ summary chunk 2/3 retrying 1/5: HTTP 429",
      "✔ summary          chunks 3/3 done, 2 reused",
      "› summary          chunks 3/3 done, 2 reused · reduce running",
      "✔ summary          chunks 3/3 done, 2 reused · reduce done",
      "",
    ]);
  });
});
