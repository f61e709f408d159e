import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { Readable, Writable } from "node:stream";
import { CommanderError } from "commander";
import { afterAll, describe, expect, it } from "vitest";
import type { JobStatusReport, JobSummary } from "../../src/jobs/manage.js";
import { buildProgram } from "../../src/cli.js";
import type { OutputMode } from "../../src/config.js";
import type { App } from "../../src/context.js";
import { describeError, EXIT, type ExitCode } from "../../src/errors.js";
import { createReporter } from "../../src/output/reporter.js";
import type { View } from "../../src/output/types.js";
import {
  cancelView,
  clusterUpView,
  jobsView,
  serverStatusView,
  statusView,
} from "../../src/output/views.js";
import type { ClusterStatus } from "../../src/restate/cluster.js";
import { freePort } from "../../src/restate/server.js";
import type { ServerStatus } from "../../src/restate/health.js";

/** A stream that keeps what is written and tells `onWrite`, like a terminal a test reads. */
class Capture extends Writable {
  text = "";
  constructor(private readonly onWrite: () => void = () => undefined) {
    super();
  }
  override _write(chunk: Buffer, _encoding: string, callback: () => void): void {
    this.text += chunk.toString();
    this.onWrite();
    callback();
  }
}

interface Run {
  code: ExitCode;
  stdout: string;
  stderr: string;
}

const dirs: string[] = [];
afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

function tempDir(): string {
  const dir = mkdtempSync(path.join(tmpdir(), "pagent-cli-"));
  dirs.push(dir);
  return dir;
}

/**
 * Runs `pagent ARGS` in this process through buildProgram, as main.ts does (exit codes by the same
 * rules), with its own home and cwd. `until`: for a command that serves until Ctrl-C, the output
 * after which the test presses it; `cwd`: shared by runs that look at the same home.
 */
async function pagent(
  args: string[],
  options: { until?: RegExp; cwd?: string } = {},
): Promise<Run> {
  const controller = new AbortController();
  const interrupt = () => {
    if (options.until?.test(stdout.text + stderr.text)) controller.abort(new Error("SIGINT"));
  };
  const stdout = new Capture(interrupt);
  const stderr = new Capture(interrupt);
  const cwd = options.cwd ?? tempDir();
  const cleanups: (() => Promise<void>)[] = [];
  let code: ExitCode = EXIT.ok;
  const app: App = {
    env: { PAGENT_HOME: path.join(cwd, "home"), NO_COLOR: "1", PATH: process.env.PATH },
    cwd,
    stdin: Readable.from([]),
    stdout,
    stderr,
    signal: controller.signal,
    version: "0.0.0-test",
    buildId: "0.0.0-test+0",
    finish: (exitCode) => {
      code = exitCode;
    },
    onExit: (cleanup) => cleanups.push(cleanup),
  };
  try {
    await buildProgram(app).parseAsync(args, { from: "user" });
  } catch (error) {
    if (error instanceof CommanderError) {
      code = error.exitCode === 0 || error.code.startsWith("commander.help") ? EXIT.ok : EXIT.usage;
      if (code !== EXIT.ok) stderr.write(`pagent: ${error.message}\n`);
    } else {
      const described = describeError(error);
      stderr.write(`pagent: ${described.message}\n`);
      code = described.exitCode;
    }
  } finally {
    while (cleanups.length > 0) await cleanups.pop()!();
  }
  return { code, stdout: stdout.text, stderr: stderr.text };
}

const MODES = [[], ["--json"], ["--ndjson"], ["--quiet"]] as const;

/** What `--ndjson` printed: every non-empty line must be one JSON object. */
function ndjson(text: string): unknown[] {
  return text
    .split("\n")
    .filter(Boolean)
    .map((line) => JSON.parse(line) as unknown);
}

describe("flag parsing, in process", () => {
  it.each([
    [["analyze", "--text", "hi", "--json", "--ndjson"], /cannot be used with/],
    [["analyze", "--text", "hi"], /no model configured/],
    [["ask", "--model", "local", "   "], /the prompt is empty/],
    [["jobs", "--status", "bogus"], /--status takes running, done, failed/],
    [["status", "not a job id!"], /job id/],
    [["cancel", "not a job id!"], /job id/],
    [["attach", "not a job id!"], /job id/],
    [["server", "status", "--ephemeral"], /manages the embedded server/],
    [["ui", "--ephemeral"], /has no UI to open/],
    [["cluster", "up", "--nodes", "10"], /--nodes may be at most 9/],
    [["serve", "--identity-key", "garbage"], /must start with publickeyv1_/],
    [["serve", "--host", "0.0.0.0"], /--identity-key/],
    [["serve", "--services", "foo"], /--services must be one of job, tasks, all/],
    [["serve", "--protocol", "foo"], /--protocol must be one of bidirectional, request-response/],
    [["serve", "--services", "job", "--allow-root", "."], /grants belong to the Tasks deployment/],
    [["serve", "--advertise", "http://lb:9080"], /use it with --register/],
    [["nonsense"], /unknown command/],
  ])("%j is a usage error (exit 2, one line)", async (args, message) => {
    const res = await pagent(args);
    expect(res.code, res.stderr).toBe(EXIT.usage);
    expect(res.stderr).toMatch(message);
    expect(res.stderr.trimEnd().split("\n")).toHaveLength(1);
    expect(res.stdout).toBe("");
  });

  it("bare pagent and every command's --help print usage on stdout with the output flags", async () => {
    const bare = await pagent([]);
    expect(bare.code).toBe(EXIT.ok);
    expect(bare.stdout).toMatch(/Commands:[\s\S]*analyze/);
    for (const command of ["analyze", "ask", "attach", "jobs", "status", "cancel", "ui", "serve"]) {
      const help = await pagent([command, "--help"]);
      expect(help.code, command).toBe(EXIT.ok);
      for (const flag of ["--json", "--ndjson", "--quiet"]) expect(help.stdout).toContain(flag);
    }
    for (const command of [
      ["server", "status"],
      ["cluster", "status"],
    ]) {
      expect((await pagent([...command, "--help"])).stdout).toContain("--ndjson");
    }
  });
});

describe("every command honours --json, --ndjson and --quiet, in process", () => {
  it("server status with nothing running: the summary, one line of NDJSON, the word stopped; exit 69", async () => {
    const cwd = tempDir();
    const [human, json, nd, quiet] = await Promise.all(
      MODES.map((mode) => pagent(["server", "status", ...mode], { cwd })),
    );
    for (const res of [human!, json!, nd!, quiet!])
      expect(res.code, res.stderr).toBe(EXIT.unavailable);
    expect(human!.stdout).toMatch(/^restate-server {2}stopped\n/);
    expect(human!.stdout).toMatch(/running jobs {4}-\n/);
    const doc = JSON.parse(json!.stdout) as ServerStatus;
    expect(doc.server).toMatchObject({ running: false, healthy: false, pid: null });
    expect(ndjson(nd!.stdout)).toEqual([doc]);
    expect(nd!.stdout.trimEnd().split("\n")).toHaveLength(1);
    expect(quiet!.stdout).toBe("stopped\n");
  });

  it("server stop with nothing running; cluster down and cluster status without a cluster", async () => {
    const cwd = tempDir();
    const stop = await Promise.all(
      MODES.map((mode) => pagent(["server", "stop", ...mode], { cwd })),
    );
    expect(stop.map((r) => r.code)).toEqual([0, 0, 0, 0]);
    expect(stop.map((r) => r.stdout)).toEqual([
      "nothing was running\n",
      `${JSON.stringify({ stopped: [] })}\n`,
      '{"stopped":[]}\n',
      "",
    ]);
    const down = await Promise.all(
      MODES.map((mode) => pagent(["cluster", "down", ...mode], { cwd })),
    );
    expect(down.map((r) => r.code)).toEqual([0, 0, 0, 0]);
    expect(down[0]!.stdout).toBe("nothing was running\n");
    expect(JSON.parse(down[1]!.stdout)).toEqual({ stopped: [], purged: false });
    expect(ndjson(down[2]!.stdout)).toEqual([{ stopped: [], purged: false }]);
    expect(down[3]!.stdout).toBe("");
    const status = await Promise.all(
      MODES.map((mode) => pagent(["cluster", "status", ...mode], { cwd })),
    );
    expect(status.map((r) => r.code)).toEqual([69, 69, 69, 69]);
    expect(status[0]!.stdout).toMatch(/^no cluster in .*; start one with `pagent cluster up`\n$/);
    const doc = JSON.parse(status[1]!.stdout) as ClusterStatus;
    expect(doc).toMatchObject({ exists: false, healthy: false, nodes: [] });
    expect(ndjson(status[2]!.stdout)).toEqual([doc]);
    expect(status[3]!.stdout).toBe("none\n");
  });

  it("ui prints its link: as is, as {url}, as one NDJSON line, alone with --quiet", async () => {
    // A unix admin socket is only dialled when the browser asks: serving the link needs no server.
    const ui = (mode: readonly string[]) =>
      pagent(
        [
          "ui",
          "--restate-url",
          "http://127.0.0.1:9",
          "--admin-url",
          `unix:${path.join(tempDir(), "admin.sock")}`,
          ...mode,
        ],
        { until: /\n/ },
      );
    const [human, json, nd, quiet] = await Promise.all(MODES.map(ui));
    const link = /^http:\/\/127\.0\.0\.1:\d+\/\S+$/;
    for (const res of [human!, json!, nd!, quiet!]) expect(res.code, res.stderr).toBe(EXIT.ok);
    expect(human!.stdout.trimEnd()).toMatch(link);
    expect(human!.stderr).toMatch(/Open this link once/);
    expect((JSON.parse(json!.stdout) as { url: string }).url).toMatch(link);
    expect(json!.stderr).toBe("");
    expect((ndjson(nd!.stdout) as { url: string }[])[0]!.url).toMatch(link);
    expect(quiet!.stdout.trimEnd()).toMatch(link);
    expect(quiet!.stderr).toBe("");
  });

  it("serve says where it listens: on stderr for people, as a JSON document, or its URL alone", async () => {
    const serve = async (mode: readonly string[], until: RegExp) =>
      pagent(["serve", "--port", String(await freePort()), ...mode], {
        until,
      });
    const human = await serve([], /listening/);
    expect(human.stdout).toBe("");
    expect(human.stderr).toMatch(
      /^pagent endpoint listening on http:\/\/127\.0\.0\.1:\d+\/? \(pid \d+\)\n/,
    );
    const json = await serve(["--json"], /\}\n$/);
    const doc = JSON.parse(json.stdout) as { url: string; pid: number; registeredWith: null };
    expect(doc).toMatchObject({ pid: process.pid, registeredWith: null });
    expect(doc.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+/);
    expect(json.stderr).toBe("");
    const nd = await serve(["--ndjson"], /\n/);
    expect(ndjson(nd.stdout)).toHaveLength(1);
    const quiet = await serve(["--quiet"], /\n/);
    expect(quiet.stdout).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/?\n$/);
    expect(quiet.stderr).toBe("");
  });
});

const jobs: JobSummary[] = [
  {
    job: "an-1",
    kind: "analyze",
    status: "done",
    input: "notes.txt",
    createdAt: "2026-01-01T00:00:00.000Z",
    ageMs: 90_000,
    tasks: { done: 3, failed: 0, total: 3 },
  },
  {
    job: "ask-2",
    kind: "ask",
    status: "failed",
    input: "what is here",
    createdAt: "2026-01-01T00:00:00.000Z",
    ageMs: 7_200_000,
    tasks: { done: 1, failed: 1, total: 2 },
  },
];

const report: JobStatusReport = {
  job: "an-1",
  kind: "analyze",
  status: "partial",
  input: "notes.txt",
  createdAt: "2026-01-01T00:00:00.000Z",
  finishedAt: "2026-01-01T00:00:02.000Z",
  invocationId: "inv_1",
  tasks: [
    {
      task: "t1",
      name: "summary",
      kind: "llm",
      state: "done",
      attempts: 1,
      lastError: null,
      ms: 1540,
      usage: { input: 10, output: 20, total: 30 },
    },
    {
      task: "t2",
      name: "sentiment",
      kind: "llm",
      state: "failed",
      attempts: 5,
      lastError: "HTTP 500",
      ms: null,
      usage: null,
    },
  ],
};

/** What a view prints in each output mode, through the reporter every command uses. */
function shown(view: View): Record<"human" | "json" | "ndjson" | "quiet", string> {
  const print = (mode: OutputMode, quiet: boolean) => {
    const stdout = new Capture();
    const stderr = new Capture();
    const terminal = { color: false, stdoutColor: false, live: false };
    createReporter({ mode, quiet, terminal, streams: { stdout, stderr } }).show(view);
    expect(stderr.text).toBe("");
    return stdout.text;
  };
  return {
    human: print("human", false),
    json: print("json", false),
    ndjson: print("ndjson", false),
    quiet: print("human", true),
  };
}

describe("the views of commands that read a running Restate", () => {
  it("jobs: a table; one JSON array; a job a line; the ids", () => {
    const out = shown(jobsView(jobs));
    expect(out.human).toBe(
      [
        "JOB    KIND     STATUS  AGE  DONE/FAILED/TOTAL  INPUT",
        "an-1   analyze  done    2m   3/0/3              notes.txt",
        "ask-2  ask      failed  2h   1/1/2              what is here",
        "",
      ].join("\n"),
    );
    expect(JSON.parse(out.json)).toEqual(jobs);
    expect(ndjson(out.ndjson)).toEqual(jobs);
    expect(out.ndjson.split("\n")).toHaveLength(3);
    expect(out.quiet).toBe("an-1\nask-2\n");
    expect(shown(jobsView([]))).toEqual({
      human: "no jobs\n",
      json: "[]\n",
      ndjson: "",
      quiet: "",
    });
  });

  it("status: the head line and task table; one document; one line; the status word", () => {
    const out = shown(statusView(report));
    expect(out.human.split("\n").slice(0, 4)).toEqual([
      "job an-1 · analyze · partial · input notes.txt · started 2026-01-01T00:00:00.000Z",
      "TASK       KIND  STATE   ATTEMPTS  TIME  TOKENS  LAST ERROR",
      "summary    llm   done    1         1.5s  30",
      "sentiment  llm   failed  5         -     -       HTTP 500",
    ]);
    expect(JSON.parse(out.json)).toEqual(report);
    expect(ndjson(out.ndjson)).toEqual([report]);
    expect(out.ndjson.trimEnd().split("\n")).toHaveLength(1);
    expect(out.quiet).toBe("partial\n");
  });

  it("cancel: what happened; {job, status}; the status word", () => {
    expect(shown(cancelView("an-1", "cancelled"))).toEqual({
      human: "cancelled job an-1\n",
      json: `${JSON.stringify({ job: "an-1", status: "cancelled" })}\n`,
      ndjson: '{"job":"an-1","status":"cancelled"}\n',
      quiet: "cancelled\n",
    });
    expect(shown(cancelView("an-1", "done")).human).toBe("job an-1 had already ended: done\n");
  });

  it("server status of a healthy runtime, cluster up of a healthy cluster: the word healthy", () => {
    const status: ServerStatus = {
      home: "/h",
      dataDir: "/h/data",
      logs: "/h/logs",
      server: {
        running: true,
        healthy: true,
        pid: 11,
        sockets: {
          ingress: "/h/data/ingress.sock",
          admin: "/h/data/admin.sock",
          node: "/h/data/fabric.sock",
        },
        version: "1.7.12",
      },
      endpoint: { running: true, healthy: true, pid: 12, port: 9080, version: "0.1.0" },
      runningJobs: 2,
      ui: "pagent ui",
      disk: null,
    };
    const server = shown(serverStatusView(status));
    expect(server.human).toMatch(/^restate-server {2}healthy {2}pid 11 {2}v1\.7\.12\n/);
    expect(server.quiet).toBe("healthy\n");
    expect(ndjson(server.ndjson)).toEqual([status]);
    const cluster: ClusterStatus = {
      exists: true,
      dir: "/h/cluster",
      clusterName: "pagent",
      partitions: 4,
      replication: 2,
      healthy: true,
      problems: [],
      nodes: [],
      partitionLeaders: [],
      endpoint: { pid: 13, running: true, healthy: true, url: "http://127.0.0.1:9081" },
      connect: null,
    };
    const up = shown(
      clusterUpView(
        {
          started: ["n1"],
          endpointStarted: true,
          registered: true,
          readyMs: 1234,
          settledMs: 5000,
        },
        cluster,
      ),
    );
    expect(up.human.split("\n")[0]).toBe(
      "started n1; every partition led by a live node after 1.2s, leaders settled after 5.0s",
    );
    expect(up.quiet).toBe("healthy\n");
    expect(ndjson(up.ndjson)).toEqual([JSON.parse(up.json)]);
  });
});
