/**
 * Jobs you can trust: real processes are SIGKILLed mid-job and the fake LLM server counts what was
 * asked again. Each test runs pagent in embedded mode on its own $PAGENT_HOME.
 */
import { spawnSync } from "node:child_process";
import {
  closeSync,
  mkdtempSync,
  openSync,
  readFileSync,
  rmSync,
  writeFileSync,
  writeSync,
} from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import type { EmbeddedState } from "../../src/restate/runtime.js";
import { parseNdjson, runCli, spawnCli, waitForLine, type CliProcess } from "../helpers/cli.js";
import { startFakeOpenAI, type FakeLogEntry, type FakeOpenAI } from "../helpers/fake-openai.js";
import { waitForExit } from "../helpers/procs.js";
import { analysisOf, inputOf } from "../helpers/request-log.js";
import { startToolServer, type ToolServer } from "../helpers/tool-server.js";

let fake: FakeOpenAI;
let tools: ToolServer;
const homes: string[] = [];

beforeAll(async () => {
  fake = await startFakeOpenAI();
  tools = await startToolServer();
});

afterAll(async () => {
  for (const home of homes) {
    await runCli(["server", "stop"], { env: { PAGENT_HOME: home } });
    rmSync(home, { recursive: true, force: true });
  }
  await fake?.close();
  await tools?.close();
});

afterEach(() => {
  fake.reset();
  tools.reset();
});

function newHome(): string {
  const home = mkdtempSync(path.join(tmpdir(), "pagent-durability-"));
  homes.push(home);
  return home;
}

function state(home: string): Required<EmbeddedState> {
  return JSON.parse(
    readFileSync(path.join(home, "runtime.json"), "utf8"),
  ) as Required<EmbeddedState>;
}

function env(home: string) {
  return { PAGENT_HOME: home, OPENAI_API_KEY: "sk-test-durable" };
}

function inputs(home: string, n: number): string[] {
  return Array.from({ length: n }, (_, i) => {
    const file = path.join(home, `input-${i}.txt`);
    writeFileSync(
      file,
      `Input number ${i}: the team shipped feature ${i} and customers were happy.`,
    );
    return file;
  });
}

const keyOf = (entry: FakeLogEntry) => `${inputOf(entry)} :: ${analysisOf(entry)}`;

/** Requests whose answer left the fake server well before `at`: their result reached the journal. */
function finishedBefore(at: number): Set<string> {
  return new Set(
    fake.requests.filter((r) => r.endedAt !== undefined && r.endedAt < at - 200).map(keyOf),
  );
}

function repeatedAmong(keys: Set<string>): string[] {
  const counts = new Map<string, number>();
  for (const entry of fake.requests) counts.set(keyOf(entry), (counts.get(keyOf(entry)) ?? 0) + 1);
  return [...keys].filter((key) => (counts.get(key) ?? 0) > 1);
}

async function until(predicate: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function kill(pid: number): Promise<void> {
  process.kill(pid, "SIGKILL");
  expect(await waitForExit(pid, 10_000)).toBe(true);
}

function finalResults(proc: { stdout: string }): Record<string, unknown>[] {
  return JSON.parse(proc.stdout) as Record<string, unknown>[];
}

/** A random moment when some analyses have finished and others are in flight. */
async function killPointReached(): Promise<void> {
  await until(() => fake.requests.some((r) => r.endedAt !== undefined), 30_000, "a first answer");
  // At least 300 ms after the first answers, so they are journaled and count as finished work.
  await new Promise((r) => setTimeout(r, 300 + Math.random() * 1200));
  await until(() => fake.inFlight() > 0, 30_000, "requests in flight");
}

/** A batch of 10 inputs × 3 analyses of 2 s each, 4 inputs at a time, started in the background. */
async function startBatch(home: string): Promise<{ cli: CliProcess; files: string[] }> {
  // Start the runtime first so the kill lands in the middle of LLM work, not of start-up.
  expect((await runCli(["server", "start"], { env: env(home) })).code).toBe(0);
  const files = inputs(home, 10);
  fake.setResponder((req) => ({
    delayMs: 2000,
    json: /sentiment/i.test(req.system)
      ? { label: "positive", score: 0.5, reason: "happy" }
      : /key points/i.test(req.system)
        ? { points: ["shipped"] }
        : { summary: "shipped" },
  }));
  const cli = spawnCli(
    [
      "analyze",
      ...files,
      "--model",
      "fake",
      "--base-url",
      fake.baseUrl,
      "--concurrency",
      "4",
      "--json",
    ],
    { env: env(home) },
  );
  return { cli, files };
}

function report(name: string, figures: Record<string, number | string>): void {
  console.log(
    `FAULT ${name}: ${Object.entries(figures)
      .map(([k, v]) => `${k}=${v}`)
      .join(" ")}`,
  );
}

/**
 * SIGKILLs the embedded server or endpoint at a random point of a batch, with no other command
 * run: the watching CLI alone must bring it back, every job completes and nothing finished is
 * asked again.
 */
async function killMidBatchAndWatch(which: "server" | "endpoint") {
  const home = newHome();
  const { cli } = await startBatch(home);
  await killPointReached();
  const killedAt = Date.now();
  const done = finishedBefore(killedAt);
  const oldPid = state(home)[which].pid;
  await kill(oldPid);
  const timer = setTimeout(() => cli.child.kill("SIGKILL"), 45_000);
  const result = await cli.done;
  clearTimeout(timer);
  expect(result.code, result.stderr).toBe(0);
  const items = finalResults(result);
  expect(items).toHaveLength(10);
  expect(items.every((i) => i.status === "done")).toBe(true);
  expect(repeatedAmong(done)).toEqual([]);
  return { home, killedAt, done, oldPid, items };
}

describe("a crash never loses finished work and never repeats it", () => {
  it("SIGKILL of the endpoint mid-batch: the next command restarts it, every job completes, nothing finished is asked again", async () => {
    const home = newHome();
    const { cli } = await startBatch(home);
    // A random point after some analyses have finished and others are in flight.
    await killPointReached();
    const killedAt = Date.now();
    const done = finishedBefore(killedAt);
    await kill(state(home).endpoint.pid);

    const restart = await runCli(["server", "start"], { env: env(home) });
    expect(restart.code).toBe(0);
    const restartedAt = Date.now();
    const result = await cli.done;
    expect(result.code, result.stderr).toBe(0);
    const items = finalResults(result);
    expect(items).toHaveLength(10);
    expect(items.every((i) => i.status === "done")).toBe(true);
    expect(repeatedAmong(done)).toEqual([]);
    const firstAfter = Math.min(
      ...fake.requests.filter((r) => r.startedAt >= restartedAt - 1000).map((r) => r.startedAt),
    );
    const recoveryMs = Math.max(0, Math.round(firstAfter - restartedAt));
    expect(recoveryMs).toBeLessThan(1000);
    report("endpoint-kill", {
      kills: 1,
      jobsCompleted: items.length,
      finishedBeforeKill: done.size,
      repeated: repeatedAmong(done).length,
      recoveryMs,
    });
  });

  it("SIGKILL of the endpoint mid-batch with no other command: the watching CLI restarts it itself, nothing finished is asked again", async () => {
    // Before the fix the command hung for ever, its tasks backing off against the dead endpoint.
    const { home, killedAt, done, oldPid, items } = await killMidBatchAndWatch("endpoint");
    expect(state(home).endpoint.pid).not.toBe(oldPid);
    const firstAfter = Math.min(
      ...fake.requests.filter((r) => r.startedAt > killedAt).map((r) => r.startedAt),
    );
    report("endpoint-kill-watching", {
      kills: 1,
      jobsCompleted: items.length,
      finishedBeforeKill: done.size,
      repeated: 0,
      revivedAfterMs: Math.round(firstAfter - killedAt),
    });
  });

  it("SIGKILL of restate-server mid-batch: the watching CLI restarts it on the same data, every job completes, nothing finished is asked again", async () => {
    const { home, done, oldPid, items } = await killMidBatchAndWatch("server");
    expect(state(home).server.pid).not.toBe(oldPid);
    report("server-kill", {
      kills: 1,
      jobsCompleted: items.length,
      finishedBeforeKill: done.size,
      repeated: 0,
    });
  });

  it("SIGKILL of both at once: restarted on the same data dir, the same guarantees", async () => {
    const home = newHome();
    const { cli } = await startBatch(home);
    await killPointReached();
    const killedAt = Date.now();
    const done = finishedBefore(killedAt);
    const { server, endpoint } = state(home);
    await Promise.all([kill(server.pid), kill(endpoint.pid)]);

    const restart = await runCli(["server", "start"], { env: env(home) });
    expect(restart.code, restart.stderr).toBe(0);
    const result = await cli.done;
    expect(result.code, result.stderr).toBe(0);
    const items = finalResults(result);
    expect(items).toHaveLength(10);
    expect(items.every((i) => i.status === "done")).toBe(true);
    expect(repeatedAmong(done)).toEqual([]);
    report("both-kill", {
      kills: 2,
      jobsCompleted: items.length,
      finishedBeforeKill: done.size,
      repeated: 0,
    });
  });

  it("SIGKILL of the endpoint during the parallel tool calls of turn 2: turn 1 and the finished tools are not repeated", async () => {
    const home = newHome();
    expect((await runCli(["server", "start"], { env: env(home) })).code).toBe(0);
    tools.route("/t1", {});
    tools.route("/fast", {});
    tools.route("/slow1", { delayMs: 2500 });
    tools.route("/slow2", { delayMs: 2500 });
    fake.setResponder((req) => {
      const turn = req.messages.filter((m) => m.role === "assistant").length + 1;
      if (turn === 1)
        return { toolCalls: [{ name: "http_get", arguments: { url: tools.url("/t1") } }] };
      if (turn === 2) {
        return {
          toolCalls: ["/fast", "/slow1", "/slow2"].map((p) => ({
            name: "http_get",
            arguments: { url: tools.url(p) },
          })),
        };
      }
      return { content: "all fetched" };
    });
    const cli = spawnCli(
      [
        "ask",
        "fetch things",
        "--model",
        "fake",
        "--base-url",
        fake.baseUrl,
        "--allow-host",
        tools.hostPort,
        "--json",
      ],
      { env: env(home) },
    );
    await until(
      () => tools.hits.some((h) => h.path === "/fast" && h.endedAt !== undefined),
      30_000,
      "the fast tool",
    );
    await new Promise((r) => setTimeout(r, 300));
    await kill(state(home).endpoint.pid);
    expect((await runCli(["server", "start"], { env: env(home) })).code).toBe(0);

    const result = await cli.done;
    expect(result.code, result.stderr).toBe(0);
    const out = JSON.parse(result.stdout) as { status: string; result: { answer: string } };
    expect(out.result.answer).toBe("all fetched");
    const turns = (n: number) =>
      fake.requests.filter((r) => {
        const body = r.body as { messages: { role: string }[] };
        return body.messages.filter((m) => m.role === "assistant").length === n - 1;
      }).length;
    expect(turns(1)).toBe(1);
    expect(turns(2)).toBe(1);
    expect(tools.count("/t1")).toBe(1);
    expect(tools.count("/fast")).toBe(1);
    report("ask-endpoint-kill", {
      kills: 1,
      llmTurn1: turns(1),
      llmTurn2: turns(2),
      fastTool: tools.count("/fast"),
      slowTool: tools.count("/slow1"),
      repeated: 0,
    });
  });

  it("SIGKILL of the submitting CLI: attach later prints the result, nothing was repeated", async () => {
    const home = newHome();
    expect((await runCli(["server", "start"], { env: env(home) })).code).toBe(0);
    fake.setResponder(() => ({ delayMs: 1500, json: { result: "one thing" } }));
    const cli = spawnCli(
      [
        "analyze",
        "--text",
        "killed cli text",
        "--analysis",
        "one=Say one thing",
        "--only",
        "one",
        "--model",
        "fake",
        "--base-url",
        fake.baseUrl,
        "--ndjson",
      ],
      { env: env(home) },
    );
    const submitted = await waitForLine(cli, /"type":"job.submitted"/, 30_000);
    expect(submitted).toBeTruthy();
    const job = (parseNdjson(cli.stdout)[0] as { job: string }).job;
    await until(() => fake.requests.length > 0, 30_000, "the LLM request");
    await kill(cli.child.pid!);

    const attached = await runCli(["attach", job, "--json"], { env: env(home) });
    expect(attached.code, attached.stderr).toBe(0);
    expect((JSON.parse(attached.stdout) as { status: string }).status).toBe("done");
    expect(fake.requests).toHaveLength(1);
    report("cli-kill", { kills: 1, jobsCompleted: 1, repeated: fake.requests.length - 1 });
  });

  it("Ctrl-C while watching: exit 130, the job finishes, attach prints the result", async () => {
    const home = newHome();
    expect((await runCli(["server", "start"], { env: env(home) })).code).toBe(0);
    fake.setResponder(() => ({ delayMs: 1500, json: { result: "fine" } }));
    const cli = spawnCli(
      [
        "analyze",
        "--text",
        "interrupted text",
        "--analysis",
        "one=Say one thing",
        "--only",
        "one",
        "--model",
        "fake",
        "--base-url",
        fake.baseUrl,
      ],
      { env: env(home) },
    );
    await until(() => fake.requests.length > 0, 30_000, "the LLM request");
    cli.child.kill("SIGINT");
    const interrupted = await cli.done;
    expect(interrupted.code).toBe(130);
    const job = /pagent attach (\S+)/.exec(interrupted.stderr)?.[1];
    expect(job, interrupted.stderr).toBeTruthy();
    const attached = await runCli(["attach", job!, "--json"], { env: env(home) });
    expect(attached.code, attached.stderr).toBe(0);
    expect(
      (JSON.parse(attached.stdout) as { result: { one: { result: string } } }).result.one.result,
    ).toBe("fine");
    expect(fake.requests).toHaveLength(1);
    report("ctrl-c", { jobsCompleted: 1, repeated: 0 });
  });

  it("cancel on a running batch: no new LLM requests after it is acknowledged, jobs shows it cancelled", async () => {
    const home = newHome();
    expect((await runCli(["server", "start"], { env: env(home) })).code).toBe(0);
    const files = inputs(home, 10);
    fake.setResponder(() => ({ delayMs: 800, json: { result: "x" } }));
    const cli = spawnCli(
      [
        "analyze",
        ...files,
        "--analysis",
        "one=Say one thing",
        "--only",
        "one",
        "--concurrency",
        "2",
        "--model",
        "fake",
        "--base-url",
        fake.baseUrl,
        "--ndjson",
      ],
      { env: env(home) },
    );
    await waitForLine(cli, /"type":"job.submitted"/, 30_000);
    const batch = (parseNdjson(cli.stdout)[0] as { job: string }).job;
    await until(
      () => fake.requests.filter((r) => r.endedAt !== undefined).length >= 2,
      30_000,
      "two answers",
    );

    const cancel = await runCli(["cancel", batch, "--json"], { env: env(home) });
    expect(cancel.code, cancel.stderr).toBe(0);
    expect((JSON.parse(cancel.stdout) as { status: string }).status).toBe("cancelled");
    const atAck = fake.requests.length;
    const inFlightAtAck = fake.inFlight();
    await new Promise((r) => setTimeout(r, 3000));
    expect(fake.requests.length).toBeLessThanOrEqual(atAck);
    expect(atAck).toBeLessThan(10);

    const watched = await cli.done;
    expect(watched.code).toBe(1);
    const jobs = await runCli(["jobs", "--json", "--status", "failed"], { env: env(home) });
    const listed = JSON.parse(jobs.stdout) as { job: string; status: string }[];
    expect(listed.find((j) => j.job === batch)?.status).toBe("cancelled");
    const attached = await runCli(["attach", batch], { env: env(home) });
    expect(attached.code).toBe(1);
    expect(attached.stderr).toMatch(/cancelled/);
    report("cancel", {
      requestsAtAck: atAck,
      inFlightAtAck,
      requestsAfter: fake.requests.length - atAck,
    });
  });
});

describe("a full disk", () => {
  it("is reported by status and the watching command, and the job finishes when space returns", async (ctx) => {
    const home = newHome();
    // A small filesystem of its own to fill: tmpfs needs root (CAP_SYS_ADMIN).
    const mounted = spawnSync("mount", ["-t", "tmpfs", "-o", "size=400m", "tmpfs", home]);
    if (mounted.status !== 0) {
      console.log(`SKIP full disk: cannot mount a tmpfs (${mounted.stderr.toString().trim()})`);
      ctx.skip();
      return;
    }
    const filler = path.join(home, "filler");
    let cli: CliProcess | undefined;
    try {
      expect((await runCli(["server", "start"], { env: env(home) })).code).toBe(0);
      fake.setResponder(() => ({ json: { summary: "fine" } }));
      const only = ["--only", "summary"];
      const model = ["--model", "fake", "--base-url", fake.baseUrl];
      const first = await runCli(["analyze", "--text", "kept safe", ...only, ...model, "--json"], {
        env: env(home),
      });
      expect(first.code, first.stderr).toBe(0);

      const files = Array.from({ length: 6 }, (_, i) => {
        const file = path.join(tmpdir(), `pagent-disk-${process.pid}-${i}.txt`);
        writeFileSync(
          file,
          `${i} ${"the launch went well and the docs need work. ".repeat(20_000)}`,
        );
        return file;
      });
      // Submitted while there is space (a command that starts on a full disk exits 69 at once);
      // the answers (1 MB each) come back after the disk is full, so journaling them hits it.
      fake.setResponder(() => ({ json: { summary: "fine ".repeat(200_000) }, delayMs: 3000 }));
      // Each input whole in one request, as before long inputs were chunked: one 1 MB answer per input.
      const whole = ["--chunk-tokens", "1000000"];
      cli = spawnCli(["analyze", ...files, ...only, ...model, ...whole, "--json"], {
        env: env(home),
      });
      await until(() => fake.inFlight() > 0, 30_000, "the batch's first requests");
      // Fill the disk to the last byte.
      const fd = openSync(filler, "w");
      const chunk = Buffer.alloc(1024 * 1024);
      try {
        for (;;) writeSync(fd, chunk);
      } catch (error) {
        expect((error as NodeJS.ErrnoException).code).toBe("ENOSPC");
      } finally {
        closeSync(fd);
      }
      await waitForLine(cli, /the disk of .* is full .*log: .*restate\.log\)/, 60_000);

      const status = await runCli(["server", "status", "--json"], { env: env(home) });
      expect(status.code).toBe(69);
      const disk = (JSON.parse(status.stdout) as { disk: { full: boolean; log: string } }).disk;
      expect(disk).toMatchObject({ full: true, log: path.join(home, "logs", "restate.log") });

      rmSync(filler);
      const freedAt = Date.now();
      const result = await cli.done;
      expect(result.code, result.stderr).toBe(0);
      const items = finalResults(result);
      expect(items.map((i) => i.status)).toEqual(Array(6).fill("done"));
      // Nothing written before the disk filled was lost.
      const again = await runCli(["analyze", "--text", "kept safe", ...only, ...model, "--json"], {
        env: env(home),
      });
      const job = (text: string) => JSON.parse(text) as { job: string; status: string };
      expect(job(again.stdout)).toMatchObject({ job: job(first.stdout).job, status: "done" });
      report("disk-full", {
        jobsCompleted: items.length,
        finishedAfterFreeMs: Date.now() - freedAt,
      });
      for (const file of files) rmSync(file, { force: true });
    } finally {
      // A watching command left behind by a failed assertion would revive the server it watches.
      cli?.child.kill("SIGKILL");
      rmSync(filler, { force: true });
      await runCli(["server", "stop"], { env: env(home) });
      spawnSync("umount", ["-l", home]);
    }
  }, 180_000);
});
