/**
 * What a new user sees (issue #12): batch cancel keeps finished work, each input keeps its name,
 * an unreachable provider exits 69, retry counts match the provider's log, batch progress names its
 * input. One restate-server, one `pagent serve` and one fake OpenAI server for the whole file.
 */
import { readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import {
  parseNdjson,
  REPO_ROOT,
  runCli,
  spawnCli,
  type CliOptions,
  type CliResult,
} from "../helpers/cli.js";
import type { FakeOpenAI } from "../helpers/fake-openai.js";
import { analysisOfSystem, schemaAnswer } from "../helpers/request-log.js";
import type { TestRestate } from "../helpers/restate.js";
import { useConnectedStack } from "../helpers/stack.js";

const API_KEY = "sk-test-user-KEY-42";
const DEAD_BASE_URL = "http://127.0.0.1:1/v1";

let restate: TestRestate;
let fake: FakeOpenAI;
let dir: string;

const stack = useConnectedStack({
  name: "user",
  serveEnv: { OPENAI_API_KEY: API_KEY },
  // Granted what the jobs use: the fake model, and the dead address the unreachable-provider test names.
  grants: ({ fake }) => ["--allow-base-url", fake.baseUrl, "--allow-base-url", DEAD_BASE_URL],
  cliEnv: { OPENAI_API_KEY: API_KEY },
  respond: schemaAnswer,
  startTimeoutMs: 90_000,
  started: (parts) => ({ restate, fake, dir } = parts),
});

const connect = (): string[] => stack.connectFlags;

function cli(args: string[], options: CliOptions = {}): Promise<CliResult> {
  return stack.cli(args, options);
}

function fakeModel(): string[] {
  return ["--model", "fake", "--base-url", fake.baseUrl];
}

let unique = 0;
function files(n: number, text?: (i: number) => string): string[] {
  const stamp = `${process.pid}-${Date.now()}-${++unique}`;
  return Array.from({ length: n }, (_, i) => {
    const file = path.join(dir, `f${unique}-${i}.txt`);
    writeFileSync(file, text ? text(i) : `Input ${i} (${stamp}): the release went fine.`);
    return file;
  });
}

const TWO = [
  "--analysis",
  "fast=Say one fast thing",
  "--analysis",
  "slow=Say one slow thing",
  "--only",
  "fast,slow",
];
const EXTRA = { fast: /fast thing/, slow: /slow thing/ };

async function until(check: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

interface Item {
  job: string | null;
  status: string;
  input: string;
  result: Record<string, unknown> | null;
  errors: Record<string, { message: string }>;
  notRun?: boolean;
}

describe("batch cancel", () => {
  it("running inputs end cancelled with what they finished; only unstarted ones are not run", async () => {
    const inputs = files(3);
    // "fast" answers at once, "slow" hangs: the first two inputs each finish one analysis.
    fake.setResponder((req) =>
      analysisOfSystem(req.system, EXTRA) === "slow" ? { hang: true } : schemaAnswer(req),
    );
    const proc = spawnCli(
      [
        "analyze",
        ...inputs,
        ...TWO,
        "--concurrency",
        "2",
        "--ndjson",
        ...fakeModel(),
        ...connect(),
      ],
      { env: { OPENAI_API_KEY: API_KEY } },
    );
    await until(
      () => fake.requests.filter((r) => r.endedAt !== undefined).length >= 2,
      30_000,
      "two fast answers",
    );
    const submitted = parseNdjson(proc.stdout)[0] as { job: string };
    await new Promise((r) => setTimeout(r, 500));
    const cancel = await cli(["cancel", submitted.job, "--json"]);
    expect(cancel.code, cancel.stderr).toBe(0);
    const watched = await proc.done;
    expect(watched.code, watched.stderr).toBe(1);
    const events = parseNdjson(watched.stdout);
    const last = events.at(-1) as { type: string; status: string; result: Item[] };
    expect(last).toMatchObject({ type: "job.done", status: "cancelled" });
    // The inputs that ran end with their own job.done; the one that never started has none.
    const inputDone = events.filter((e) => e.type === "job.done" && "input" in e);
    expect(inputDone.map((e) => [e.input, e.status]).sort()).toEqual([
      [inputs[0], "cancelled"],
      [inputs[1], "cancelled"],
    ]);

    const attached = await cli(["attach", submitted.job, "--json"]);
    expect(attached.code).toBe(1);
    const items = JSON.parse(attached.stdout) as Item[];
    expect(items.map((i) => i.input)).toEqual(inputs);
    for (const item of items.slice(0, 2)) {
      expect(item.status).toBe("cancelled");
      expect(item.notRun).toBeUndefined();
      expect(Object.keys(item.result ?? {})).toEqual(["fast"]);
      expect(item.errors.slow?.message).toMatch(/cancelled/);
    }
    expect(items[2]).toMatchObject({ status: "failed", notRun: true, job: null });
    expect(items[2]!.errors.input?.message).toMatch(/not run.*cancelled/);
    expect(last.result).toEqual(items);

    const status = await cli(["status", submitted.job, "--json"]);
    const children = (JSON.parse(status.stdout) as { children: { state: string }[] }).children;
    expect(children.map((c) => c.state)).toEqual(["cancelled", "cancelled", "cancelled"]);
    // jobs, status and cancel honour --ndjson and --quiet like every command (issue #14).
    expect((await cli(["status", submitted.job, "--quiet"])).stdout).toBe("cancelled\n");
    expect((await cli(["cancel", submitted.job, "--quiet"])).stdout).toBe("cancelled\n");
    const listed = parseNdjson((await cli(["jobs", "--ndjson", "--limit", "100"])).stdout);
    expect(listed.find((j) => j.job === submitted.job)).toMatchObject({ status: "cancelled" });
    const ids = (await cli(["jobs", "--quiet", "--limit", "100"])).stdout;
    expect(ids).toBe(listed.map((j) => `${String(j.job)}\n`).join(""));

    // Restate's own record of the batch says it was cancelled, not that it succeeded.
    const rows = await restate.admin.query<{
      completion_result: string;
      completion_failure: string;
    }>(
      `SELECT completion_result, completion_failure FROM sys_invocation WHERE target_service_key = '${submitted.job}' AND target_handler_name = 'batch'`,
    );
    expect(rows[0]?.completion_result).toBe("failure");
    expect(rows[0]?.completion_failure).toMatch(/409|[Cc]ancel/);
  });
});

describe("input names", () => {
  const ONE = ["--analysis", "one=Say one thing", "--only", "one"];

  it("inputs with equal bytes keep their own names, entries and events; stdin is -", async () => {
    const same = `Same bytes ${process.pid}-${Date.now()}: the release went fine.`;
    const [a, b, c] = files(3, (i) => (i < 2 ? same : `Other bytes ${i} ${Date.now()}`));
    const run = await cli(["analyze", a!, b!, c!, ...ONE, "--ndjson", ...fakeModel()]);
    expect(run.code, run.stderr).toBe(0);
    const events = parseNdjson(run.stdout) as { type: string; input?: string; job: string }[];
    const batch = events[0]!.job;
    const perInput = events.filter((e) => e.job !== batch);
    expect(perInput.length).toBeGreaterThan(0);
    for (const event of perInput) expect([a, b, c]).toContain(event.input);
    const done = perInput.filter((e) => e.type === "job.done").map((e) => e.input);
    expect(done.sort()).toEqual([a, b, c].sort());
    const final = events.at(-1) as unknown as { result: Item[] };
    expect(final.result.map((i) => i.input)).toEqual([a, b, c]);
    expect(final.result[0]!.job).toBe(final.result[1]!.job);
    // The shared job ran once.
    expect(fake.requests).toHaveLength(2);

    // Without a TTY, every per-input progress line names its input.
    const human = await cli(["analyze", a!, c!, ...ONE, "--fresh", ...fakeModel()]);
    expect(human.code, human.stderr).toBe(0);
    const progress = human.stderr.split("\n").filter((l) => /^[›✔✖↻] /.test(l));
    expect(progress.length).toBeGreaterThan(0);
    for (const line of progress) expect(line.includes(a!) || line.includes(c!), line).toBe(true);

    const stdin = await cli(["analyze", "-", ...ONE, "--json", ...fakeModel()], { input: same });
    expect(stdin.code, stdin.stderr).toBe(0);
    expect((JSON.parse(stdin.stdout) as Item).input).toBe("-");
  });
});

describe("provider failures", () => {
  const ONE = ["--analysis", "one=Say one thing", "--only", "one"];

  it("an unreachable provider exits 69 naming the base URL, never the key; a 4xx stays the job's failure", async () => {
    const [a, b] = files(2);
    const dead = DEAD_BASE_URL;
    const unreachable = ["--model", "m", "--base-url", dead, "--retries", "2"];
    const single = await cli(["analyze", a!, ...ONE, ...unreachable]);
    expect(single.code, single.stderr).toBe(69);
    expect(single.stdout + single.stderr).toContain(dead);
    expect(single.stdout + single.stderr).toMatch(/--base-url/);
    expect(single.stdout + single.stderr).not.toContain(API_KEY);
    // A failed task keeps the attempts it took too.
    const job = /job (an-\S+)/.exec(single.stderr)![1]!;
    const status = await cli(["status", job, "--json"]);
    const tasks = (JSON.parse(status.stdout) as { tasks: { attempts: number | null }[] }).tasks;
    expect(tasks.map((t) => t.attempts)).toEqual([2]);

    const batch = await cli(["analyze", a!, b!, ...ONE, ...unreachable, "--json"]);
    expect(batch.code, batch.stderr).toBe(69);
    const items = JSON.parse(batch.stdout) as Item[];
    for (const item of items) expect(item.errors.one?.message).toContain(`unreachable at ${dead}`);

    fake.setResponder(() => ({ status: 401 }));
    const refused = await cli(["analyze", a!, ...ONE, "--fresh", ...fakeModel()]);
    expect(refused.code, refused.stderr).toBe(1);
  });

  it("each failed attempt is one task.retrying, numbered as the provider saw it; status keeps the attempts", async () => {
    const [a] = files(1);
    const seen = new Map<string, number>();
    fake.setResponder((req) => {
      const n = (seen.get(req.system) ?? 0) + 1;
      seen.set(req.system, n);
      return n === 1 ? { status: 500 } : schemaAnswer(req);
    });
    const run = await cli(["analyze", a!, "--ndjson", ...fakeModel()]);
    expect(run.code, run.stderr).toBe(0);
    const events = parseNdjson(run.stdout) as {
      type: string;
      name?: string;
      attempt?: number;
      maxAttempts?: number;
    }[];
    expect(fake.requests).toHaveLength(6);
    const retrying = events.filter((e) => e.type === "task.retrying");
    expect(retrying.map((e) => `${e.name}#${e.attempt}`).sort()).toEqual([
      "key-points#1",
      "sentiment#1",
      "summary#1",
    ]);
    for (const e of events) if (e.attempt !== undefined) expect(e.attempt).toBeLessThanOrEqual(5);
    const job = (events[0] as unknown as { job: string }).job;
    const status = await cli(["status", job, "--json"]);
    const tasks = (JSON.parse(status.stdout) as { tasks: { attempts: number | null }[] }).tasks;
    expect(tasks.map((t) => t.attempts)).toEqual([2, 2, 2]);
    const human = await cli(["status", job]);
    expect(human.stdout).toMatch(/sentiment\s+analysis\s+done\s+2\s/);
  });
});

describe("usage", () => {
  it("bare pagent prints the usage on stdout and exits 0; subcommand help lists the global options", async () => {
    const bare = await runCli([]);
    expect(bare.code, bare.stderr).toBe(0);
    expect(bare.stderr).toBe("");
    expect(bare.stdout).toMatch(/Commands:[\s\S]*analyze[\s\S]*ask/);
    expect(bare.stdout).toContain("--model");
    for (const command of ["analyze", "ask", "jobs", "server", "status"]) {
      const help = await runCli([command, "--help"]);
      expect(help.code).toBe(0);
      expect(help.stdout).toMatch(/--json/);
      expect(help.stdout).toMatch(/--model/);
      expect(help.stdout).not.toMatch(/\(default: [^)]*\)\s*\(default:/);
    }
    // The exit codes in --help are README's table, code by code.
    const readme = readFileSync(path.join(REPO_ROOT, "README.md"), "utf8");
    const table = [...readme.matchAll(/^\| (\d+) +\| (.+?) +\|$/gm)].map((m) => m[1]);
    const listed = [...bare.stdout.matchAll(/^ {2}(\d+) {2,}/gm)].map((m) => m[1]);
    expect(listed).toEqual(table);
    expect((await runCli(["jobs", "--status", "bogus"])).code).toBe(2);
  });
});
