/**
 * Inputs that never end or never start (issue 13.1): /dev/zero, `<(yes)`, an endless stdin, a
 * named pipe nobody writes to. `--max-bytes` bounds each one, a pipe with no writer is refused
 * after `--input-timeout`, and Ctrl-C or SIGTERM end the command at once. Nothing reaches Restate:
 * every input is refused before a server would be started.
 */
import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { CLI, NODE, runCli, spawnCli, type CliResult } from "../helpers/cli.js";

const dir = mkdtempSync(path.join(tmpdir(), "pagent-inputs-e2e-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Never reached: the inputs are refused first. */
const MODEL = ["--model", "fake", "--base-url", "http://127.0.0.1:9/v1"];
const ENV = { PAGENT_HOME: path.join(dir, "home") };

/** Runs `pagent analyze ARGS` through bash, for process substitution and redirections. */
function viaBash(script: string, timeoutMs = 20_000): Promise<CliResult & { ms: number }> {
  const started = Date.now();
  const child = spawn("bash", ["-c", script], {
    env: { ...process.env, ...ENV, PAGENT_CLI: `${NODE} ${CLI}`, NO_COLOR: "1" },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (c: Buffer) => (stdout += c.toString()));
  child.stderr.on("data", (c: Buffer) => (stderr += c.toString()));
  const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
  return new Promise((resolve) =>
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr, ms: Date.now() - started });
    }),
  );
}

const OVER = /input is larger than --max-bytes 65536; split it or raise --max-bytes/;

describe("--max-bytes bounds every input however it arrives", () => {
  it.each([
    ["a device (/dev/zero)", `exec $PAGENT_CLI analyze /dev/zero`],
    ["process substitution (<(yes))", `exec $PAGENT_CLI analyze <(yes)`],
    ["an endless stdin (- < /dev/zero)", `exec $PAGENT_CLI analyze - < /dev/zero`],
    ["an endless pipe on stdin (yes |)", `yes | $PAGENT_CLI analyze`],
  ])("%s is refused at the limit, exit 2, quickly", async (_what, script) => {
    const res = await viaBash(`${script} --max-bytes 65536 ${MODEL.join(" ")}`);
    expect(res.code, res.stderr).toBe(2);
    expect(res.stderr).toMatch(OVER);
    expect(res.stderr.trimEnd().split("\n")).toHaveLength(1);
    expect(res.ms).toBeLessThan(10_000);
  });

  it("a slow writer is waited for and its text read", async () => {
    // The writer appears at once but says something only after 2 s.
    const res = await viaBash(
      `exec $PAGENT_CLI analyze <(sleep 2; echo hello world) --max-bytes 4 --input-timeout 5s ${MODEL.join(" ")}`,
    );
    expect(res.code, res.stderr).toBe(2);
    expect(res.stderr).toMatch(/input is larger than --max-bytes 4/);
  });

  it("a writer that holds the pipe open and says nothing is refused after --input-timeout", async () => {
    const res = await viaBash(
      `exec $PAGENT_CLI analyze <(sleep 30 2>/dev/null) --input-timeout 1s ${MODEL.join(" ")}`,
    );
    expect(res.code, res.stderr).toBe(2);
    expect(res.stderr.trim()).toMatch(
      /^pagent: \/dev\/fd\/\d+: no data arrived for 1 s; check the writer or raise --input-timeout$/,
    );
    expect(res.ms).toBeLessThan(8_000);
  });
});

describe("a named pipe with no writer", () => {
  const fifo = path.join(dir, "fifo");
  spawnSync("mkfifo", [fifo]);

  it("is refused after --input-timeout with one line, exit 2", async () => {
    const started = Date.now();
    const res = await runCli(["analyze", fifo, "--input-timeout", "1s", ...MODEL], {
      env: ENV,
      timeoutMs: 20_000,
    });
    expect(res.code, res.stderr).toBe(2);
    expect(res.stderr.trim()).toBe(
      `pagent: ${fifo}: no writer opened this pipe within 1 s; start the writer first or raise --input-timeout`,
    );
    expect(Date.now() - started).toBeLessThan(8_000);
  });

  it.each([
    ["SIGTERM", 130],
    ["SIGINT", 130],
  ] as const)(
    "%s while waiting for its writer ends the command at once (exit %i)",
    async (signal, code) => {
      const proc = spawnCli(["analyze", fifo, ...MODEL], { env: ENV, timeoutMs: 20_000 });
      // Give the CLI time to block in the pipe's open().
      await new Promise((r) => setTimeout(r, 1500));
      const sent = Date.now();
      proc.child.kill(signal);
      const res = await proc.done;
      expect(res.code, res.stderr).toBe(code);
      expect(res.stderr).toMatch(/interrupted while reading the inputs; nothing was submitted/);
      expect(Date.now() - sent).toBeLessThan(3_000);
    },
  );
});

it("SIGTERM while a silent writer holds stdin open ends the command at once", async () => {
  const child = spawn(NODE, [CLI, "analyze", "-", ...MODEL], {
    env: { ...process.env, ...ENV, NO_COLOR: "1" },
    stdio: ["pipe", "pipe", "pipe"],
  });
  let stderr = "";
  child.stderr.on("data", (c: Buffer) => (stderr += c.toString()));
  const closed = new Promise<number | null>((resolve) => child.on("close", resolve));
  // Half a sentence, and the pipe stays open: the writer is there, only slow.
  child.stdin.write("the first half of a sentence");
  await new Promise((r) => setTimeout(r, 1000));
  const sent = Date.now();
  child.kill("SIGTERM");
  const timer = setTimeout(() => child.kill("SIGKILL"), 10_000);
  const code = await closed;
  clearTimeout(timer);
  expect(code, stderr).toBe(130);
  expect(Date.now() - sent).toBeLessThan(3_000);
});

it("pagent serve refuses an identity key Restate cannot parse: one line, exit 2", async () => {
  const res = await runCli(["serve", "--port", "1", "--identity-key", "publickeyv1_garbage"], {
    env: ENV,
    timeoutMs: 20_000,
  });
  expect(res.code, res.stderr).toBe(2);
  expect(res.stderr.trim()).toMatch(
    /^pagent: identity key "publickeyv1_garbage" is not a valid Restate public key \(.*\)/,
  );
  expect(res.stderr.trim().split("\n")).toHaveLength(1);
});
