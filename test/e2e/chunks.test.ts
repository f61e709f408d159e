/**
 * Long inputs: a text over --chunk-tokens runs each analysis as map (a task per chunk, in parallel)
 * then reduce; a rerun after an edit asks only for the changed chunk; a SIGKILLed endpoint asks for
 * no finished chunk again. One restate-server and one `pagent serve` for the file; the fake provider
 * counts what is asked.
 */
import { writeFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { splitChunks } from "../../services/chunking.js";
import { parseNdjson, spawnCli } from "../helpers/cli.js";
import type { FakeLogEntry } from "../helpers/fake-openai.js";
import { longText } from "../helpers/long-text.js";
import { inputOf, systemOf } from "../helpers/request-log.js";
import { useConnectedStack } from "../helpers/stack.js";

const stack = useConnectedStack({ name: "chunks", fake: { latencyMs: 100 } });

const CHUNK_TOKENS = 2000;
const ANALYSES = ["summary", "key-points"];
const isMap = (e: FakeLogEntry) => /one part of a longer document/.test(systemOf(e));
const isReduce = (e: FakeLogEntry) => /consecutive parts of one long document/.test(systemOf(e));
const analysisOf = (e: FakeLogEntry) =>
  /key points/i.test(systemOf(e)) ? "key-points" : "summary";

function analyze(file: string, ...extra: string[]) {
  return [
    "analyze",
    file,
    "--chunk-tokens",
    String(CHUNK_TOKENS),
    "--only",
    ANALYSES.join(","),
    "--model",
    "m",
    "--base-url",
    stack.fake.baseUrl,
    ...extra,
  ];
}

function write(name: string, text: string): string {
  const file = path.join(stack.dir, name);
  writeFileSync(file, text);
  return file;
}

/** A paragraph whose edit changes exactly one chunk (most do; one near a boundary changes two). */
function editOneChunk(text: string): string {
  const paragraphs = text.split("\n\n");
  const before = new Set(splitChunks(text, CHUNK_TOKENS));
  for (let p = Math.floor(paragraphs.length / 2); p < paragraphs.length; p++) {
    const edited = [...paragraphs];
    edited[p] = edited[p]!.replace(" tells of the ", " now speaks of the ");
    const after = splitChunks(edited.join("\n\n"), CHUNK_TOKENS);
    if (after.filter((c) => !before.has(c)).length === 1) return edited.join("\n\n");
  }
  throw new Error("no paragraph whose edit changes one chunk");
}

interface ChunkedResult {
  status: string;
  result: Record<string, unknown>;
  chunks: number;
  reusedChunks: number;
  usageByAnalysis: Record<string, { total: number }>;
}

describe("analyze a long input in chunks", () => {
  const text = longText(300_000);
  const chunks = splitChunks(text, CHUNK_TOKENS);

  it("maps the chunks in parallel, then reduces each analysis once; a rerun after a one-paragraph edit asks for one chunk per analysis and the reduces", async () => {
    expect(Buffer.byteLength(text)).toBeGreaterThanOrEqual(300_000);
    const first = await stack.cli(analyze(write("long.txt", text), "--json", "--concurrency", "6"));
    expect(first.stderr).toBe("");
    expect(first.code).toBe(0);
    const result = JSON.parse(first.stdout) as ChunkedResult;
    expect(result.status).toBe("done");
    expect(Object.keys(result.result)).toEqual(ANALYSES);
    expect(result.chunks).toBe(chunks.length);
    expect(result.reusedChunks).toBe(0);
    for (const name of ANALYSES) expect(result.usageByAnalysis[name]!.total).toBeGreaterThan(0);

    const maps = stack.fake.requests.filter(isMap);
    expect(maps).toHaveLength(chunks.length * ANALYSES.length);
    // Every chunk asked once per analysis, each request only its chunk.
    expect(new Set(maps.map((e) => `${analysisOf(e)}\0${inputOf(e)}`)).size).toBe(maps.length);
    expect(new Set(maps.map(inputOf))).toEqual(new Set(chunks));
    // In parallel, under --concurrency.
    expect(stack.fake.maxInFlight).toBeGreaterThan(1);
    expect(stack.fake.maxInFlight).toBeLessThanOrEqual(6);
    const reduces = stack.fake.requests.filter(isReduce);
    expect(reduces.map(analysisOf).sort()).toEqual([...ANALYSES].sort());
    for (const reduce of reduces) {
      const own = maps.filter((m) => analysisOf(m) === analysisOf(reduce));
      expect(reduce.startedAt).toBeGreaterThanOrEqual(Math.max(...own.map((m) => m.endedAt!)));
    }

    stack.fake.reset();
    const second = await stack.cli(
      analyze(write("long-edited.txt", editOneChunk(text)), "--ndjson"),
    );
    expect(second.code).toBe(0);
    expect(stack.fake.count(isMap)).toBe(ANALYSES.length);
    expect(stack.fake.count(isReduce)).toBe(ANALYSES.length);
    const events = parseNdjson(second.stdout);
    const done = events.filter((e) => e.type === "task.done" && e.chunk !== undefined);
    expect(done).toHaveLength(chunks.length * ANALYSES.length);
    expect(done.filter((e) => e.reused === true)).toHaveLength(
      (chunks.length - 1) * ANALYSES.length,
    );
    const end = events.at(-1)!;
    expect(end).toMatchObject({
      type: "job.done",
      status: "done",
      chunks: chunks.length,
      reusedChunks: (chunks.length - 1) * ANALYSES.length,
    });
  }, 180_000);

  it("SIGKILL of the endpoint mid-map: no chunk it had finished is asked again", async () => {
    const other = longText(300_000, 3);
    const parts = splitChunks(other, CHUNK_TOKENS);
    stack.fake.reset();
    const cli = spawnCli([
      ...analyze(write("long-kill.txt", other), "--ndjson"),
      ...stack.connectFlags,
    ]);
    const deadline = Date.now() + 60_000;
    while (stack.fake.count((e) => isMap(e) && e.endedAt !== undefined) < 20) {
      if (Date.now() > deadline) throw new Error("the map requests did not start");
      await new Promise((r) => setTimeout(r, 50));
    }
    // What the job recorded as done is journaled: those chunks must never be asked again.
    const status = await stack.cli(["status", jobOf(cli.stdout), "--json"]);
    await stack.endpoint.kill();
    const finished = (
      JSON.parse(status.stdout) as { tasks: { name: string; chunk?: number; state: string }[] }
    ).tasks.filter((t) => t.chunk !== undefined && t.state === "done");
    expect(finished.length).toBeGreaterThan(0);
    await new Promise((r) => setTimeout(r, 500));
    await stack.endpoint.restart();
    const ended = await cli.done;
    expect(ended.code).toBe(0);
    for (const task of finished) {
      const asked = stack.fake.count(
        (e) => isMap(e) && analysisOf(e) === task.name && inputOf(e) === parts[task.chunk!],
      );
      expect(asked, `${task.name} chunk ${task.chunk}`).toBe(1);
    }
    expect(parseNdjson(ended.stdout).at(-1)).toMatchObject({ type: "job.done", status: "done" });
  }, 180_000);
});

/** The job id from the first NDJSON line the command wrote. */
function jobOf(stdout: string): string {
  const job = parseNdjson(stdout)[0]?.job;
  if (typeof job !== "string") throw new Error(`no job yet in: ${stdout.slice(0, 200)}`);
  return job;
}
