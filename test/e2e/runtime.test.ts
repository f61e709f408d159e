/**
 * The embedded, ephemeral and connect runtimes end to end: real `bin/pagent.js` processes, the real
 * restate-server from node_modules, and Linux's /proc to see what was really started.
 */
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import net from "node:net";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { runCli, spawnCli, type CliResult } from "../helpers/cli.js";
import { startFakeOpenAI } from "../helpers/fake-openai.js";
import type { ServerStatus } from "../../src/restate/health.js";
import { freePort } from "../../src/restate/server.js";
import {
  filesContaining,
  filesUnder,
  findProcesses,
  listeningSocketsOf,
  listeningUnixSocketsOf,
  pidAlive,
  processesWithEnv,
  rssMiB,
  waitForExit,
} from "../helpers/procs.js";

/** `pagent server status --json`. */
type Status = ServerStatus;

interface AnalyzeResult {
  job: string;
  status: string;
  result: Record<string, unknown>;
  errors: Record<string, unknown>;
}

const LONG = 240_000;
const homes = new Set<string>();
const dirs = new Set<string>();

function removeDir(dir: string): void {
  dirs.delete(dir);
  rmSync(dir, { recursive: true, force: true });
}

/** A fresh, empty $PAGENT_HOME; {@link teardown} stops what runs in it and removes it. */
function newHome(): string {
  const home = mkdtempSync(path.join(tmpdir(), "pagent-rt-"));
  homes.add(home);
  return home;
}

function pagent(
  home: string,
  args: string[],
  env: Record<string, string | undefined> = {},
): Promise<CliResult> {
  return runCli(args, { env: { PAGENT_HOME: home, ...env }, timeoutMs: 180_000 });
}

function parse<T>(res: CliResult): T {
  try {
    return JSON.parse(res.stdout) as T;
  } catch {
    throw new Error(`not JSON (exit ${res.code}):\nstdout: ${res.stdout}\nstderr: ${res.stderr}`);
  }
}

async function status(home: string): Promise<{ code: number | null; status: Status }> {
  const res = await pagent(home, ["server", "status", "--json"]);
  return { code: res.code, status: parse<Status>(res) };
}

async function start(home: string, env: Record<string, string | undefined> = {}): Promise<Status> {
  const res = await pagent(home, ["server", "start", "--json"], env);
  expect(res.code, res.stderr).toBe(0);
  return parse<Status>(res);
}

async function analyzeLocal(
  home: string,
  text: string,
  env: Record<string, string | undefined> = {},
): Promise<AnalyzeResult> {
  const res = await pagent(home, ["analyze", "--text", text, "--model", "local", "--json"], env);
  expect(res.code, res.stderr).toBe(0);
  return parse<AnalyzeResult>(res);
}

/** `server stop --json` succeeds and reports that it stopped both processes. */
async function stopBoth(home: string): Promise<void> {
  const stop = await pagent(home, ["server", "stop", "--json"]);
  expect(stop.code, stop.stderr).toBe(0);
  expect(parse<{ stopped: string[] }>(stop).stopped.sort()).toEqual(
    ["endpoint", "restate-server"].sort(),
  );
}

/**
 * The endpoint was kept, unless pagent was rebuilt in between (other suites build dist/ on this
 * machine too), which rightly replaces it.
 */
function expectSameEndpoint(before: Status, after: Status): void {
  if (before.endpoint.version !== after.endpoint.version) {
    console.log(
      `note: pagent was rebuilt meanwhile (${before.endpoint.version} -> ${after.endpoint.version}); the endpoint was replaced`,
    );
    return;
  }
  expect(after.endpoint.pid).toBe(before.endpoint.pid);
}

/** Processes started for `home`: they inherit PAGENT_HOME or name the home on their command line. */
function homeProcesses(home: string) {
  const byPid = new Map(
    [...processesWithEnv("PAGENT_HOME", home), ...findProcesses(`${home}/`)].map((p) => [p.pid, p]),
  );
  return [...byPid.values()];
}

function restateServersOf(home: string) {
  return findProcesses("restate-server", path.join(home, "restate"));
}

function endpointsOf(home: string) {
  return processesWithEnv("PAGENT_HOME", home).filter((p) => / serve( |$)/.test(p.cmdline));
}

/** `server stop`, then SIGKILL whatever of this home survived, then remove the directory. */
async function teardown(home: string): Promise<void> {
  if (!homes.has(home)) return;
  homes.delete(home);
  await pagent(home, ["server", "stop"]).catch(() => undefined);
  for (const proc of homeProcesses(home)) {
    try {
      process.kill(proc.pid, "SIGKILL");
    } catch {
      // gone meanwhile
    }
    await waitForExit(proc.pid, 5000);
  }
  rmSync(home, { recursive: true, force: true });
}

afterAll(async () => {
  for (const home of [...homes]) await teardown(home);
  for (const dir of [...dirs]) removeDir(dir);
}, LONG);

describe("errors", () => {
  it("an unreachable Restate is exit 69 with one line; --verbose adds the stack; a bad flag is exit 2", async () => {
    const home = newHome();
    try {
      const unreachable = [
        "--restate-url",
        "http://127.0.0.1:1",
        "--admin-url",
        "http://127.0.0.1:1",
        "analyze",
        "--text",
        "hi",
        "--model",
        "local",
      ];
      const res = await pagent(home, unreachable);
      expect(res.code).toBe(69);
      expect(res.stdout).toBe("");
      const lines = res.stderr.trimEnd().split("\n");
      expect(lines, res.stderr).toHaveLength(1);
      expect(lines[0]).toMatch(/^pagent: /);
      expect(res.stderr).not.toMatch(/^\s+at /m);

      const flag = await pagent(home, ["analyze", "--bogus-flag", "--text", "hi"]);
      expect(flag.code).toBe(2);
      expect(flag.stderr.trimEnd().split("\n"), flag.stderr).toHaveLength(1);
      expect(flag.stderr).toMatch(/^pagent: .*bogus-flag/);

      const verbose = await pagent(home, ["--verbose", ...unreachable]);
      expect(verbose.code).toBe(69);
      expect(verbose.stderr).toMatch(/^pagent: /);
      expect(verbose.stderr).toMatch(/^\s+at .+:\d+:\d+\)?$/m);

      // Connect mode never starts an embedded server.
      expect(restateServersOf(home)).toHaveLength(0);
    } finally {
      await teardown(home);
    }
  });
});

describe("embedded server lifecycle", () => {
  const home = newHome();
  const TEXT = "The release went well and the team is happy. The docs still need work.";
  afterAll(() => teardown(home), LONG);

  it(
    "start twice is one server and one endpoint; stop leaves nothing; start reuses the data",
    async () => {
      const first = await start(home);
      expect(first.server.healthy).toBe(true);
      expect(first.endpoint.healthy).toBe(true);
      expect(first.server.pid).toBeGreaterThan(0);
      expect(first.endpoint.pid).toBeGreaterThan(0);
      expect(first.dataDir).toBe(path.join(home, "restate"));

      const second = await start(home);
      expect(second.server.pid).toBe(first.server.pid);
      expectSameEndpoint(first, second);
      expect(second.endpoint.port).toBe(first.endpoint.port);
      expect(second.server.sockets).toEqual(first.server.sockets);
      expect(restateServersOf(home).map((p) => p.pid)).toEqual([first.server.pid]);
      expect(endpointsOf(home).map((p) => p.pid)).toEqual([second.endpoint.pid]);

      const healthy = await status(home);
      expect(healthy.code).toBe(0);
      expect(healthy.status.server.healthy).toBe(true);
      expect(healthy.status.endpoint.healthy).toBe(true);

      const before = await analyzeLocal(home, TEXT);
      expect(before.status).toBe("done");

      await stopBoth(home);
      expect(pidAlive(first.server.pid)).toBe(false);
      expect(pidAlive(second.endpoint.pid)).toBe(false);
      expect(homeProcesses(home)).toEqual([]);

      const stopped = await status(home);
      expect(stopped.code).toBe(69);
      expect(stopped.status.server.running).toBe(false);
      expect(stopped.status.endpoint.running).toBe(false);

      const again = await start(home);
      expect(again.server.healthy).toBe(true);
      expect(again.endpoint.healthy).toBe(true);
      expect(again.dataDir).toBe(first.dataDir);
      expect(again.server.pid).not.toBe(first.server.pid);

      const after = await analyzeLocal(home, TEXT);
      expect(after.job).toBe(before.job);
      expect(after.status).toBe(before.status);
      expect(after.result).toEqual(before.result);
      expect(after.errors).toEqual(before.errors);
    },
    LONG,
  );

  it("the server listens on its three unix sockets and no TCP port; the endpoint on 127.0.0.1 only", async () => {
    const { code, status: s } = await status(home);
    expect(code).toBe(0);
    expect(listeningSocketsOf(s.server.pid!), "restate-server's TCP listeners").toEqual([]);
    expect(listeningUnixSocketsOf(s.server.pid!)).toEqual(
      [s.server.sockets.admin, s.server.sockets.node, s.server.sockets.ingress].sort(),
    );
    for (const socket of [
      s.server.sockets.admin,
      s.server.sockets.node,
      s.server.sockets.ingress,
    ]) {
      expect(path.dirname(socket)).toBe(path.join(home, "restate", "pagent"));
    }
    const sockets = listeningSocketsOf(s.endpoint.pid!);
    expect(
      sockets.length,
      `the endpoint (pid ${s.endpoint.pid}) listens on nothing`,
    ).toBeGreaterThan(0);
    for (const socket of sockets) {
      expect(`endpoint ${socket.family} ${socket.address}:${socket.port}`).toBe(
        `endpoint ${socket.family} 127.0.0.1:${socket.port}`,
      );
    }
    expect(sockets.map((x) => x.port)).toContain(s.endpoint.port);
  });

  it(
    "a SIGKILLed server or endpoint is restarted by the next command",
    async () => {
      const initial = (await status(home)).status;
      expect(initial.server.healthy && initial.endpoint.healthy).toBe(true);

      process.kill(initial.server.pid!, "SIGKILL");
      expect(await waitForExit(initial.server.pid!)).toBe(true);
      const afterServerKill = await analyzeLocal(
        home,
        "A server was killed, and it came back fine.",
      );
      expect(afterServerKill.status).toBe("done");
      const s1 = await status(home);
      expect(s1.code).toBe(0);
      expect(s1.status.server.healthy).toBe(true);
      expect(s1.status.server.pid).not.toBe(initial.server.pid);
      expect(s1.status.endpoint.healthy).toBe(true);
      expect(restateServersOf(home)).toHaveLength(1);

      process.kill(s1.status.endpoint.pid!, "SIGKILL");
      expect(await waitForExit(s1.status.endpoint.pid!)).toBe(true);
      const afterEndpointKill = await analyzeLocal(
        home,
        "An endpoint was killed, and it came back too.",
      );
      expect(afterEndpointKill.status).toBe("done");
      const s2 = await status(home);
      expect(s2.code).toBe(0);
      expect(s2.status.endpoint.healthy).toBe(true);
      expect(s2.status.endpoint.pid).not.toBe(s1.status.endpoint.pid);
      expect(s2.status.endpoint.port).toBe(s1.status.endpoint.port);
      expect(s2.status.server.pid).toBe(s1.status.server.pid);
      expect(endpointsOf(home)).toHaveLength(1);
    },
    LONG,
  );
});

describe("remembered pids", () => {
  it(
    "a state file whose pids now belong to another program: status, stop and start never signal it",
    async () => {
      const home = newHome();
      // Two live programs that are not pagent's, as after a reboot or with a stale runtime.json.
      const strangers = [spawn("sleep", ["300"]), spawn("sleep", ["300"])];
      try {
        const [server, endpoint] = strangers.map((c) => c.pid!);
        const ports = {
          ingress: await freePort(),
          admin: await freePort(),
          node: await freePort(),
        };
        const endpointPort = await freePort();
        const writeState = () =>
          writeFileSync(
            path.join(home, "runtime.json"),
            JSON.stringify({
              server: { pid: server, ports, startedAt: new Date().toISOString() },
              endpoint: {
                pid: endpoint,
                port: endpointPort,
                keyFingerprint: "0",
                version: "0",
                startedAt: new Date().toISOString(),
              },
            }),
          );
        writeState();

        const stopped = await status(home);
        expect(stopped.code).toBe(69);
        expect(stopped.status.server.running).toBe(false);
        expect(stopped.status.endpoint.running).toBe(false);

        const stop = await pagent(home, ["server", "stop", "--json"]);
        expect(stop.code, stop.stderr).toBe(0);
        expect(parse<{ stopped: string[] }>(stop).stopped).toEqual([]);
        expect(pidAlive(server) && pidAlive(endpoint)).toBe(true);

        // Starting (what every job command does first) replaces them without touching them.
        writeState();
        const started = await start(home);
        expect(started.server.pid).not.toBe(server);
        expect(started.endpoint.pid).not.toBe(endpoint);
        await new Promise((r) => setTimeout(r, 500));
        expect(pidAlive(server) && pidAlive(endpoint)).toBe(true);
      } finally {
        await teardown(home);
        for (const child of strangers) child.kill("SIGKILL");
      }
    },
    LONG,
  );
});

describe("concurrent start", () => {
  it(
    "two `server start` at the same moment on an empty home start one server and one endpoint",
    async () => {
      const home = newHome();
      try {
        const [a, b] = await Promise.all([
          pagent(home, ["server", "start", "--json"]),
          pagent(home, ["server", "start", "--json"]),
        ]);
        expect(a.code, a.stderr).toBe(0);
        expect(b.code, b.stderr).toBe(0);
        const sa = parse<Status>(a);
        const sb = parse<Status>(b);
        expect(sa.server.pid).toBeGreaterThan(0);
        expect(sb.server.pid).toBe(sa.server.pid);
        expect(sb.endpoint.pid).toBe(sa.endpoint.pid);
        expect(sb.server.sockets).toEqual(sa.server.sockets);
        expect(sb.endpoint.port).toBe(sa.endpoint.port);
        expect(restateServersOf(home).map((p) => p.pid)).toEqual([sa.server.pid]);
        expect(endpointsOf(home).map((p) => p.pid)).toEqual([sa.endpoint.pid]);
        expect((await status(home)).code).toBe(0);
      } finally {
        await teardown(home);
      }
    },
    LONG,
  );
});

describe("--ephemeral", () => {
  /**
   * The command's os.tmpdir(), private to the test (TMPDIR): other suites' ephemeral runs on this
   * machine cannot blur the before/after comparison.
   */
  function privateTmp(): string {
    const dir = mkdtempSync(path.join(tmpdir(), "pagent-rt-tmp-"));
    dirs.add(dir);
    return dir;
  }
  const ephemeralDirs = (dir: string) =>
    readdirSync(dir).filter((name) => name.startsWith("pagent-ephemeral-"));
  const leftovers = (dir: string) => findProcesses(path.join(dir, "pagent-ephemeral-"));

  it(
    "leaves no process and no directory behind",
    async () => {
      const tmp = privateTmp();
      const home = newHome();
      try {
        const res = await pagent(
          home,
          [
            "analyze",
            "--ephemeral",
            "--text",
            "hello world, good day",
            "--model",
            "local",
            "--json",
          ],
          { TMPDIR: tmp },
        );
        expect(res.code, res.stderr).toBe(0);
        const out = parse<AnalyzeResult>(res);
        expect(out.status).toBe("done");
        // Nothing at all: restate-server's own scratch dirs (invoker-*) included.
        expect(readdirSync(tmp)).toEqual([]);
        expect(leftovers(tmp)).toEqual([]);
        // Nothing of the embedded runtime either.
        expect(readdirSync(home)).toEqual([]);
        expect(homeProcesses(home)).toEqual([]);
      } finally {
        await teardown(home);
        removeDir(tmp);
      }
    },
    LONG,
  );

  it(
    "Ctrl-C exits 130 and still leaves no process and no directory behind",
    async () => {
      const tmp = privateTmp();
      const home = newHome();
      const fake = await startFakeOpenAI({ latencyMs: 5000 });
      const proc = spawnCli(
        [
          "analyze",
          "--ephemeral",
          "--text",
          "A slow model answers this one.",
          "--model",
          "fake",
          "--base-url",
          fake.baseUrl,
          "--json",
        ],
        {
          env: { PAGENT_HOME: home, TMPDIR: tmp, OPENAI_API_KEY: "sk-fake-ephemeral" },
          timeoutMs: 180_000,
        },
      );
      try {
        const deadline = Date.now() + 120_000;
        while (fake.requests.length === 0 && proc.child.exitCode === null) {
          if (Date.now() > deadline) throw new Error("the job never called the model");
          await new Promise((r) => setTimeout(r, 50));
        }
        expect(proc.child.exitCode, proc.stderr).toBeNull();
        // While it runs, its server and data live in the private temp dir.
        const dirs = ephemeralDirs(tmp);
        expect(dirs).toHaveLength(1);
        const servers = findProcesses("restate-server", path.join(tmp, dirs[0]!));
        expect(servers).toHaveLength(1);

        const interruptedAt = Date.now();
        proc.child.kill("SIGINT");
        const res = await proc.done;
        const exitMs = Date.now() - interruptedAt;
        expect(res.code, res.stderr).toBe(130);
        expect(exitMs).toBeLessThan(30_000);
        expect(await waitForExit(servers[0]!.pid, 5000)).toBe(true);
        expect(readdirSync(tmp)).toEqual([]);
        expect(leftovers(tmp)).toEqual([]);
        expect(homeProcesses(home)).toEqual([]);
      } finally {
        if (proc.child.exitCode === null && proc.child.signalCode === null) {
          proc.child.kill("SIGKILL");
          await proc.done;
        }
        for (const p of leftovers(tmp)) process.kill(p.pid, "SIGKILL");
        await fake.close();
        await teardown(home);
        removeDir(tmp);
      }
    },
    LONG,
  );
});

describe("a lost or corrupt runtime.json (#13.4)", () => {
  it(
    "the next command adopts the running server and endpoint; server stop still stops them",
    async () => {
      const home = newHome();
      try {
        const first = await start(home);
        rmSync(path.join(home, "runtime.json"));
        const res = await pagent(home, [
          "analyze",
          "--text",
          "The state file is gone, the server is not.",
          "--model",
          "local",
          "--json",
        ]);
        expect(res.code, res.stderr).toBe(0);
        const adopted = (await status(home)).status;
        expect(adopted.server.pid).toBe(first.server.pid);
        expectSameEndpoint(first, adopted);
        expect(restateServersOf(home).map((p) => p.pid)).toEqual([first.server.pid]);
        expect(endpointsOf(home)).toHaveLength(1);

        writeFileSync(path.join(home, "runtime.json"), "{ not json");
        const lost = await status(home);
        expect(lost.code).toBe(0);
        expect(lost.status.server.pid).toBe(first.server.pid);
        await stopBoth(home);
        expect(homeProcesses(home)).toEqual([]);
      } finally {
        await teardown(home);
      }
    },
    LONG,
  );
});

describe("a taken endpoint port (#13.5)", () => {
  it(
    "after server stop mid-job and another process on the endpoint's port, attach finishes the job on a new port",
    async () => {
      const home = newHome();
      const fake = await startFakeOpenAI({ latencyMs: 3000 });
      const env = { OPENAI_API_KEY: "sk-fake-port" };
      const squatterConnections: net.Socket[] = [];
      const squatter = net.createServer((socket) => squatterConnections.push(socket));
      try {
        const first = await start(home, env);
        const job = "taken-port-job";
        const watching = spawnCli(
          [
            "analyze",
            "--text",
            "The port was taken while the job was running.",
            "--only",
            "sentiment",
            "--model",
            "fake",
            "--base-url",
            fake.baseUrl,
            "--id",
            job,
            "--json",
          ],
          { env: { PAGENT_HOME: home, ...env }, timeoutMs: 120_000 },
        );
        const deadline = Date.now() + 60_000;
        while (fake.requests.length === 0 && Date.now() < deadline) {
          await new Promise((r) => setTimeout(r, 20));
        }
        expect(fake.requests.length, watching.stderr).toBeGreaterThan(0);
        watching.child.kill("SIGINT");
        expect((await watching.done).code).toBe(130);
        const stop = await pagent(home, ["server", "stop"]);
        expect(stop.code, stop.stderr).toBe(0);
        await new Promise<void>((resolve) =>
          squatter.listen(first.endpoint.port!, "127.0.0.1", resolve),
        );

        const attach = await runCli(["attach", job, "--json"], {
          env: { PAGENT_HOME: home, ...env },
          timeoutMs: 90_000,
        });
        expect(attach.code, attach.stderr).toBe(0);
        expect(parse<AnalyzeResult>(attach).status).toBe("done");
        const after = (await status(home)).status;
        expect(after.endpoint.port).not.toBe(first.endpoint.port);
        // Whatever holds the old port got none of the job's requests.
        expect(squatterConnections).toHaveLength(0);
      } finally {
        for (const socket of squatterConnections) socket.destroy();
        await new Promise((r) => squatter.close(r));
        await fake.close();
        await teardown(home);
      }
    },
    LONG,
  );
});

describe("OPENAI_API_KEY changes", () => {
  it(
    "restart the idle endpoint on the same port and never reach $PAGENT_HOME",
    async () => {
      const home = newHome();
      const keyOne = `sk-one-${randomBytes(8).toString("hex")}`;
      const keyTwo = `sk-two-${randomBytes(8).toString("hex")}`;
      const leaks = () =>
        ["sk-one", "sk-two", keyOne, keyTwo].flatMap((needle) =>
          filesContaining(home, needle).map((file) => `${needle} in ${file}`),
        );
      try {
        const one = await start(home, { OPENAI_API_KEY: keyOne });
        expect(one.endpoint.healthy).toBe(true);
        const endpointOne = homeProcesses(home).find((p) => p.pid === one.endpoint.pid)!;
        expect(endpointOne.environ).toContain(`OPENAI_API_KEY=${keyOne}`);
        expect(endpointOne.cmdline).not.toContain(keyOne);
        const server = homeProcesses(home).find((p) => p.pid === one.server.pid)!;
        expect(server.environ.some((e) => e.startsWith("OPENAI_API_KEY="))).toBe(false);

        // Same key: the endpoint stays.
        await analyzeLocal(home, "First key, steady as she goes.", { OPENAI_API_KEY: keyOne });
        const beforeChange = (await status(home)).status;
        expectSameEndpoint(one, beforeChange);

        const changeStarted = performance.now();
        const two = await start(home, { OPENAI_API_KEY: keyTwo });
        console.log(
          `MEASURE key-change-endpoint-restart=${Math.round(performance.now() - changeStarted)}ms`,
        );
        expect(two.endpoint.healthy).toBe(true);
        expect(two.endpoint.pid).not.toBe(beforeChange.endpoint.pid);
        expect(two.endpoint.port).toBe(one.endpoint.port);
        expect(two.server.pid).toBe(one.server.pid);
        expect(pidAlive(beforeChange.endpoint.pid)).toBe(false);
        const endpointTwo = homeProcesses(home).find((p) => p.pid === two.endpoint.pid)!;
        expect(endpointTwo.environ).toContain(`OPENAI_API_KEY=${keyTwo}`);

        await analyzeLocal(home, "Second key, all good again.", { OPENAI_API_KEY: keyTwo });
        expectSameEndpoint(two, (await status(home)).status);
        expect(endpointsOf(home)).toHaveLength(1);

        expect(filesUnder(home).length).toBeGreaterThan(0);
        expect(leaks()).toEqual([]);
        // Stopped, RocksDB has flushed what it keeps: still no key in any byte.
        const stop = await pagent(home, ["server", "stop"]);
        expect(stop.code, stop.stderr).toBe(0);
        expect(filesUnder(path.join(home, "restate")).length).toBeGreaterThan(0);
        expect(leaks()).toEqual([]);
      } finally {
        await teardown(home);
      }
    },
    LONG,
  );
});

describe("measurements", () => {
  it(
    "start on an empty home to the first answer, and idle memory",
    async () => {
      const home = newHome();
      try {
        expect(existsSync(path.join(home, "runtime.json"))).toBe(false);
        const t0 = performance.now();
        const started = await start(home);
        const t1 = performance.now();
        const answer = await analyzeLocal(home, "Measuring is good; guessing is bad.");
        const t2 = performance.now();
        expect(answer.status).toBe("done");
        // Let both settle before reading their idle footprint.
        await new Promise((r) => setTimeout(r, 3000));
        const serverRss = rssMiB(started.server.pid!);
        const endpointRss = rssMiB(started.endpoint.pid!);
        console.log(
          `MEASURE server-start-to-first-answer=${Math.round(t2 - t0)}ms (start=${Math.round(t1 - t0)}ms analyze=${Math.round(t2 - t1)}ms) server-rss=${serverRss.toFixed(1)}MB endpoint-rss=${endpointRss.toFixed(1)}MB`,
        );
      } finally {
        await teardown(home);
      }
    },
    LONG,
  );
});
