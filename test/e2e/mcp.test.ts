/**
 * `pagent ask` with tools from real MCP servers off the npm registry (server-everything,
 * server-filesystem) and a tiny counting server (test/helpers/mcp-counter.js), through a real
 * restate-server and a real `pagent serve` that grants them from its own config.
 */
import {
  existsSync,
  mkdtempSync,
  readFileSync,
  realpathSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { REPO_ROOT, runCli, spawnCli, type CliOptions, type CliResult } from "../helpers/cli.js";
import {
  startFakeOpenAI,
  type FakeOpenAI,
  type FakeReply,
  type FakeRequest,
  type FakeToolCall,
} from "../helpers/fake-openai.js";
import {
  startRestate,
  startServeProcess,
  type TestEndpoint,
  type TestRestate,
} from "../helpers/restate.js";

const SECRET = "mcp-secret-value-0123456789";
const bin = (pkg: string) =>
  path.join(REPO_ROOT, "node_modules", "@modelcontextprotocol", pkg, "dist", "index.js");

let restate: TestRestate;
let endpoint: TestEndpoint;
let fake: FakeOpenAI;
let dir: string;
let countFile: string;

beforeAll(async () => {
  dir = realpathSync(mkdtempSync(path.join(tmpdir(), "pagent-mcp-e2e-")));
  countFile = path.join(dir, "calls.txt");
  writeFileSync(path.join(dir, "notes.txt"), "the notes say hello");
  // The user's existing .mcp.json, read as it is with --mcp-config.
  writeFileSync(
    path.join(dir, ".mcp.json"),
    JSON.stringify({
      mcpServers: {
        everything: {
          command: process.execPath,
          args: [bin("server-everything")],
          env: { GREETING: "${MCP_GREETING}", MODE: "${MCP_MODE:-plain}" },
        },
        fs: { command: process.execPath, args: [bin("server-filesystem"), dir] },
        counter: {
          command: process.execPath,
          args: [path.join(REPO_ROOT, "test", "helpers", "mcp-counter.js")],
          env: { COUNT_FILE: countFile },
        },
        // The same server with a per-call limit shorter than --task-timeout.
        quick: {
          command: process.execPath,
          args: [path.join(REPO_ROOT, "test", "helpers", "mcp-counter.js")],
          env: { COUNT_FILE: countFile },
          timeoutMs: 300,
        },
      },
    }),
  );
  restate = await startRestate();
  fake = await startFakeOpenAI({ latencyMs: 0 });
  endpoint = await startServeProcess(
    restate,
    { OPENAI_API_KEY: "sk-test-key", MCP_GREETING: SECRET },
    ["--allow-base-url", fake.baseUrl, "--mcp-config", ".mcp.json"],
    dir,
  );
}, 120_000);

afterAll(async () => {
  await endpoint?.[Symbol.asyncDispose]();
  await restate?.stop();
  await fake?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

function askArgs(args: string[]): string[] {
  return [
    "ask",
    ...args,
    // No file tools: the endpoint grants no root.
    "--tools",
    "calculator",
    "--model",
    "fake",
    "--base-url",
    fake.baseUrl,
    "--mcp-config",
    ".mcp.json",
    "--restate-url",
    restate.ingressUrl,
    "--admin-url",
    restate.adminUrl,
    "--json",
  ];
}

function ask(args: string[], options: CliOptions = {}): Promise<CliResult> {
  return runCli(askArgs(args), { timeoutMs: 120_000, cwd: dir, ...options });
}

/** First turn: the given calls; once results are there: an answer. */
function callsThenAnswer(calls: FakeToolCall[]) {
  return (req: FakeRequest): FakeReply =>
    req.toolResults.length > 0 ? { content: "final answer" } : { toolCalls: calls };
}

/** The tool results the model got in the last request, by call id. */
function lastResults(): Record<string, string> {
  const last = fake.requests.at(-1)?.body as { messages?: Record<string, unknown>[] };
  return Object.fromEntries(
    (last.messages ?? [])
      .filter((m) => m.role === "tool")
      .map((m) => [String(m.tool_call_id), String(m.content)]),
  );
}

describe("MCP tools in ask", () => {
  it("offers <server>__<tool> names, runs calls of one turn in parallel, gives a stdio server only its own variables", async () => {
    fake.reset();
    fake.setResponder(
      callsThenAnswer([
        {
          id: "a",
          name: "everything__trigger-long-running-operation",
          arguments: { duration: 1, steps: 1 },
        },
        {
          id: "b",
          name: "everything__trigger-long-running-operation",
          arguments: { duration: 1, steps: 1 },
        },
        { id: "c", name: "everything__get-env", arguments: {} },
        { id: "d", name: "fs__read_text_file", arguments: { path: path.join(dir, "notes.txt") } },
        { id: "e", name: "everything__get-sum", arguments: { a: "not a number" } },
      ]),
    );
    const res = await ask(["--mcp", "everything,fs", "use the tools"]);
    expect(res.code, res.stderr).toBe(0);
    const offered = (
      fake.requests[0]!.body as { tools: { function: { name: string } }[] }
    ).tools.map((t) => t.function.name);
    expect(offered).toContain("everything__get-env");
    expect(offered).toContain("fs__read_text_file");
    expect(offered.some((n) => n.startsWith("counter__"))).toBe(false);
    for (const name of offered) expect(name).toMatch(/^[A-Za-z0-9_-]{1,64}$/);
    const results = lastResults();
    expect(results.a).toContain("Long running operation completed");
    expect(results.d).toContain("the notes say hello");
    // Invalid arguments go back to the model as the result.
    expect(results.e).toMatch(/^error: /);
    const env = JSON.parse(results.c!) as Record<string, string>;
    expect(env.GREETING).toBe(SECRET);
    expect(env.MODE).toBe("plain");
    expect(env.OPENAI_API_KEY).toBeUndefined();
    expect(env.MCP_GREETING).toBeUndefined();
    // The two 1 s calls ran at the same time: the tool phase, between the model's two turns
    // (the servers started before the first turn, when the job listed their tools).
    const [first, second] = fake.requests;
    expect(second!.startedAt - first!.endedAt!).toBeLessThan(1900);
  }, 120_000);

  it("refuses an unknown --mcp server before submission", async () => {
    const res = await ask(["--mcp", "nope", "x"]);
    expect(res.code).toBe(2);
    expect(res.stderr).toMatch(
      /--mcp nope: no such MCP server; configured: everything, fs, counter/,
    );
  });

  it("pagent tools lists built-in and MCP tools, and names each server that failed to start and why", async () => {
    // A remote server that refuses everyone, and a stdio server whose command does not exist.
    const locked = http.createServer((_req, res) => res.writeHead(401).end());
    await new Promise<void>((resolve) => locked.listen(0, "127.0.0.1", resolve));
    try {
      const url = `http://127.0.0.1:${(locked.address() as AddressInfo).port}/mcp`;
      writeFileSync(
        path.join(dir, "broken.json"),
        JSON.stringify({
          mcpServers: {
            locked: { type: "http", url, headers: { Authorization: "Bearer ${LOCKED_TOKEN:-x}" } },
            missing: { command: "/nonexistent/mcp-server" },
            fs: { command: process.execPath, args: [bin("server-filesystem"), dir] },
          },
        }),
      );
      const res = await runCli(
        [
          "tools",
          "--ephemeral",
          "--json",
          "--mcp-config",
          "broken.json",
          "--mcp",
          "fs,locked,missing",
        ],
        { cwd: dir, timeoutMs: 120_000, env: { PAGENT_HOME: path.join(dir, "home") } },
      );
      expect(res.code, res.stderr).toBe(3);
      const report = JSON.parse(res.stdout) as {
        tools: { name: string; source: string; inputSchema: unknown }[];
        failed: { server: string; message: string }[];
      };
      expect(report.tools.find((t) => t.name === "calculator")?.source).toBe("built-in");
      const read = report.tools.find((t) => t.name === "fs__read_text_file");
      expect(read?.source).toBe("mcp:fs");
      expect(read?.inputSchema).toMatchObject({ type: "object" });
      expect(report.failed.map((f) => f.server)).toEqual(["locked", "missing"]);
      expect(res.stderr).toContain(`MCP server "locked" at ${url} refused pagent (HTTP 401)`);
      expect(res.stderr).toContain(
        'MCP server "missing": cannot run command "/nonexistent/mcp-server" (ENOENT)',
      );
    } finally {
      locked.close();
    }
  }, 120_000);

  it("a server that dies during a read-only call is started again and the call repeated; a slow call ends at the server's timeoutMs", async () => {
    fake.reset();
    rmSync(countFile, { force: true });
    fake.setResponder(
      callsThenAnswer([
        { id: "crash", name: "counter__crash_once", arguments: {} },
        { id: "slow", name: "quick__peek", arguments: { ms: 3000 } },
      ]),
    );
    const res = await ask(["--mcp", "counter,quick", "--task-timeout", "60s", "go"]);
    expect(res.code, res.stderr).toBe(0);
    expect(lastResults().crash).toBe("survived");
    expect(lastResults().slow).toBe("error: quick__peek timed out after 300 ms");
    expect(readFileSync(countFile, "utf8").match(/crash_once/g)).toHaveLength(2);
  }, 120_000);

  for (const [tool, idempotent] of [
    ["append", false],
    ["peek", true],
  ] as const) {
    it(`a SIGKILL of the endpoint mid-call: ${tool} ${idempotent ? "runs again" : "is not repeated, the model is told"}`, async () => {
      fake.reset();
      rmSync(countFile, { force: true });
      fake.setResponder(
        callsThenAnswer([{ id: "k", name: `counter__${tool}`, arguments: { ms: 2500 } }]),
      );
      const proc = spawnCli(askArgs(["--mcp", "counter", "count"]), {
        cwd: dir,
        timeoutMs: 120_000,
      });
      const deadline = Date.now() + 60_000;
      while (!existsSync(countFile) && Date.now() < deadline)
        await new Promise((r) => setTimeout(r, 50));
      await endpoint.kill();
      await endpoint.restart();
      const res = await proc.done;
      expect(res.code, res.stderr).toBe(0);
      const calls = readFileSync(countFile, "utf8").trim().split("\n");
      if (idempotent) {
        expect(calls).toEqual([tool, tool]);
        expect(lastResults().k).toBe(`${tool} done`);
      } else {
        expect(calls).toEqual([tool]);
        expect(lastResults().k).toBe(
          "error: outcome unknown: the call was interrupted by a crash and was not repeated",
        );
      }
    }, 120_000);
  }
});
