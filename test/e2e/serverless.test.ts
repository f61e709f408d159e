/**
 * The orchestrator and the executors apart (#17): `Job` on one endpoint, `Tasks` on another, both in
 * request-response mode over HTTP/1.1 and signed by the one real restate-server; then the same batch
 * through the Lambda and fetch handlers, driven by that server through test/helpers/function-host.js.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, realpathSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ensureIdentityKey } from "../../src/restate/identity.js";
import { freePort } from "../../src/restate/server.js";
import { NODE, REPO_ROOT, spawnCli, waitForLine, type CliProcess } from "../helpers/cli.js";
import { startFakeOpenAI, type FakeLogEntry, type FakeOpenAI } from "../helpers/fake-openai.js";
import { startRestate, type TestRestate } from "../helpers/restate.js";

const KEY = "sk-serverless-test-key";
let dir: string;
let restate: TestRestate;
let fake: FakeOpenAI;
let publicKey: string;
let inputs: string[];
const children: ChildProcess[] = [];

beforeAll(async () => {
  dir = realpathSync(mkdtempSync(path.join(tmpdir(), "pagent-serverless-e2e-")));
  const keyFile = path.join(dir, "identity.pem");
  publicKey = ensureIdentityKey(keyFile);
  restate = await startRestate({ identityKeyFile: keyFile });
  // Slow enough that a batch has LLM calls in flight for a while: the job waits, suspended.
  fake = await startFakeOpenAI({ latencyMs: 1000 });
  inputs = Array.from({ length: 6 }, (_, i) => {
    const file = path.join(dir, `note-${i}.txt`);
    writeFileSync(file, `Note ${i}: the team shipped part ${i} of the release on time.\n`);
    return file;
  });
}, 60_000);

afterAll(async () => {
  for (const child of children) if (child.exitCode === null) child.kill("SIGKILL");
  await restate?.stop();
  await fake?.close();
  rmSync(dir, { recursive: true, force: true });
});

/** `pagent serve` hosting some services in request-response mode, signed calls only, registered. */
async function serve(services: "job" | "tasks", port: number, extra: string[], env = {}) {
  const proc = spawnCli(
    [
      "serve",
      "--services",
      services,
      "--protocol",
      "request-response",
      "--port",
      String(port),
      "--identity-key",
      publicKey,
      "--register",
      restate.adminUrl,
      ...extra,
    ],
    { env, cwd: dir },
  );
  children.push(proc.child);
  await waitForLine(proc, /registered/, 20_000);
  return proc;
}

const analyze = (args: string[] = []) =>
  spawnCli(
    [
      "analyze",
      ...inputs,
      "--model",
      "fake",
      "--base-url",
      fake.baseUrl,
      "--concurrency",
      "3",
      "--json",
      "--restate-url",
      restate.ingressUrl,
      "--admin-url",
      restate.adminUrl,
      ...args,
    ],
    { cwd: dir, timeoutMs: 120_000 },
  );

/** One analysis of one input, as the provider sees it: its instruction and its text. */
function taskKey(entry: FakeLogEntry): string {
  const messages = (entry.body as { messages: { content: unknown }[] }).messages;
  return JSON.stringify([messages[0]?.content, messages.at(-1)?.content]);
}

async function until(check: () => boolean | Promise<boolean>, what: string, timeoutMs = 30_000) {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

function expectAllDone(res: { code: number | null; stdout: string; stderr: string }) {
  expect(res.code, res.stderr).toBe(0);
  const out = JSON.parse(res.stdout) as { status: string; result: Record<string, unknown> }[];
  expect(out.map((o) => o.status)).toEqual(inputs.map(() => "done"));
  for (const o of out)
    expect(Object.keys(o.result)).toEqual(["sentiment", "key-points", "summary"]);
}

describe("Job and Tasks as separate request-response deployments", () => {
  it("suspends the job while tasks run, and survives the Tasks endpoint's SIGKILL without asking a finished task again", async () => {
    const jobPort = await freePort();
    const tasksPort = await freePort();
    // The Job endpoint gets no key at all: it needs none.
    await serve("job", jobPort, [], { OPENAI_API_KEY: undefined });
    const tasksArgs = ["--allow-base-url", fake.baseUrl];
    let tasks: CliProcess = await serve("tasks", tasksPort, tasksArgs, { OPENAI_API_KEY: KEY });

    const run = analyze();
    // While the provider holds LLM calls, every unfinished Job invocation is suspended: it waits
    // for its tasks without a request open to its endpoint.
    let suspendedSeen = false;
    await until(async () => {
      if (fake.inFlight() === 0) return false;
      const rows = await restate.admin.query<{ status: string }>(
        // The waiting handlers; a finished job's delayed `expire` is `scheduled`, not waiting.
        "SELECT status FROM sys_invocation WHERE target_service_name = 'Job' AND target_handler_name IN ('batch', 'analyze') AND status != 'completed'",
      );
      suspendedSeen =
        fake.inFlight() > 0 && rows.length >= 2 && rows.every((r) => r.status === "suspended");
      return suspendedSeen;
    }, "every running Job invocation suspended while LLM calls are in flight");
    expect(suspendedSeen).toBe(true);

    // Kill the executors once some tasks finished and others are in flight, then start a new
    // endpoint at the same address.
    const answeredBefore = (ms: number) =>
      fake.count((e) => e.status === 200 && e.endedAt !== undefined && e.endedAt < ms);
    await until(
      () => answeredBefore(Date.now() - 700) >= 3 && fake.inFlight() > 0,
      "finished and in-flight tasks",
    );
    const inFlightAtKill = fake.inFlight();
    await new Promise<void>((resolve) => {
      tasks.child.once("exit", () => resolve());
      tasks.child.kill("SIGKILL");
    });
    const killedAt = Date.now();
    // Answered well before the kill: journaled, so finished; none of these may be asked again.
    const finished = fake.requests
      .filter((e) => e.status === 200 && e.endedAt !== undefined && e.endedAt < killedAt - 700)
      .map(taskKey);
    expect(finished.length).toBeGreaterThanOrEqual(3);
    tasks = await serve("tasks", tasksPort, tasksArgs, { OPENAI_API_KEY: KEY });

    expectAllDone(await run.done);
    expect(inFlightAtKill).toBeGreaterThan(0);
    const asked = fake.requests.map(taskKey);
    for (const key of finished) expect(asked.filter((k) => k === key)).toHaveLength(1);
    // Every analysis of every input was answered.
    expect(new Set(asked).size).toBe(inputs.length * 3);

    // Signed calls only, in request-response mode too: an unsigned request is refused.
    const unsigned = await fetch(`http://127.0.0.1:${tasksPort}/discover`, {
      headers: { accept: "application/vnd.restate.endpointmanifest.v3+json" },
    });
    expect(unsigned.status).toBe(401);
    tasks.child.kill("SIGTERM");
    for (const child of children) child.kill("SIGTERM");
  }, 120_000);
});

/** test/helpers/function-host.js: a Lambda or fetch handler behind a local HTTP/1.1 server. */
async function functionHost(kind: "lambda" | "fetch", env: Record<string, string>) {
  const port = await freePort();
  const { OPENAI_API_KEY: _key, ...parentEnv } = process.env;
  const child = spawn(
    NODE,
    [path.join(REPO_ROOT, "test/helpers/function-host.js"), kind, String(port)],
    {
      cwd: dir,
      env: { ...parentEnv, RESTATE_IDENTITY_KEYS: publicKey, ...env },
      stdio: ["ignore", "pipe", "pipe"],
    },
  );
  children.push(child);
  const host = { port, uri: `http://127.0.0.1:${port}`, output: "" };
  child.stdout.on("data", (chunk: Buffer) => (host.output += chunk.toString()));
  child.stderr.on("data", (chunk: Buffer) => (host.output += chunk.toString()));
  await until(
    () => host.output.includes(`listening ${port}`) || child.exitCode !== null,
    `${kind} host`,
  );
  expect(child.exitCode, host.output).toBeNull();
  // A function URL speaks HTTP/1.1: registered as such, as `pagent serve --protocol request-response` does.
  await restate.admin.register(host.uri, {}, { http1: true });
  return host;
}

describe("the Lambda and fetch handlers", () => {
  it("run the same batch, driven by restate-server through a function URL-style adapter", async () => {
    fake.reset();
    const lambda = await functionHost("lambda", {
      PAGENT_SERVICES: "tasks",
      PAGENT_ALLOW_BASE_URL: fake.baseUrl,
      OPENAI_API_KEY: KEY,
    });
    const fetchHost = await functionHost("fetch", { PAGENT_SERVICES: "job" });

    expectAllDone(await analyze(["--fresh"]).done);
    expect(new Set(fake.requests.map(taskKey)).size).toBe(inputs.length * 3);
    expect(fake.requests.every((e) => e.headers.authorization === `Bearer ${KEY}`)).toBe(true);
    // The Lambda handler ran the tasks, the fetch handler the jobs, all signed by the server.
    expect(lambda.output).toMatch(/request \/invoke\/Tasks\/analysis 200/);
    expect(fetchHost.output).toMatch(/request \/invoke\/Job\/batch 200/);
    expect(fetchHost.output).toMatch(/request \/invoke\/Job\/analyze 200/);
    expect(`${lambda.output}${fetchHost.output}`).not.toMatch(/ 401|failed/);
    for (const host of [lambda, fetchHost]) {
      const unsigned = await fetch(`${host.uri}/discover`, {
        headers: { accept: "application/vnd.restate.endpointmanifest.v3+json" },
      });
      expect(unsigned.status).toBe(401);
    }
  }, 120_000);
});
