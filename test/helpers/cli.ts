import { spawn, type ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

/** The repository root, whether this file runs from test/helpers (vitest) or dist/test/helpers (bench). */
export const REPO_ROOT = ((): string => {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  while (!existsSync(path.join(dir, "package.json"))) dir = path.dirname(dir);
  return dir;
})();
export const CLI = path.join(REPO_ROOT, "bin", "pagent.js");

/** Node used to run the CLI: PAGENT_TEST_NODE lets CI run the e2e suite again under Node 22. */
export const NODE = process.env.PAGENT_TEST_NODE || process.execPath;

export interface CliOptions {
  env?: Record<string, string | undefined>;
  input?: string | Buffer;
  cwd?: string;
  timeoutMs?: number;
}

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface CliProcess {
  child: ChildProcess;
  stdout: string;
  stderr: string;
  done: Promise<CliResult>;
}

/** The environment of a CLI run: no colour, no inherited model or Restate settings unless given. */
function cliEnv(extra: Record<string, string | undefined> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const key of [
    "PAGENT_MODEL",
    "PAGENT_EPHEMERAL",
    "OPENAI_API_KEY",
    "OPENAI_BASE_URL",
    "RESTATE_INGRESS_URL",
    "RESTATE_ADMIN_URL",
    "FORCE_COLOR",
  ]) {
    delete env[key];
  }
  env.NO_COLOR = "1";
  for (const [key, value] of Object.entries(extra)) {
    if (value === undefined) delete env[key];
    else env[key] = value;
  }
  return env;
}

export function spawnCli(args: string[], options: CliOptions = {}): CliProcess {
  const child = spawn(NODE, [CLI, ...args], {
    cwd: options.cwd ?? REPO_ROOT,
    env: cliEnv(options.env),
    stdio: ["pipe", "pipe", "pipe"],
  });
  const proc: CliProcess = {
    child,
    stdout: "",
    stderr: "",
    done: undefined as unknown as Promise<CliResult>,
  };
  child.stdout.on("data", (chunk: Buffer) => (proc.stdout += chunk.toString()));
  child.stderr.on("data", (chunk: Buffer) => (proc.stderr += chunk.toString()));
  if (options.input !== undefined) child.stdin.end(options.input);
  else child.stdin.end();
  proc.done = new Promise((resolve) => {
    const timer = options.timeoutMs
      ? setTimeout(() => child.kill("SIGKILL"), options.timeoutMs)
      : undefined;
    child.on("close", (code, signal) => {
      if (timer) clearTimeout(timer);
      resolve({ code, signal, stdout: proc.stdout, stderr: proc.stderr });
    });
  });
  return proc;
}

export function runCli(args: string[], options: CliOptions = {}): Promise<CliResult> {
  return spawnCli(args, { timeoutMs: 60_000, ...options }).done;
}

/** Resolves when the process has printed a line matching the pattern (stdout or stderr). */
export async function waitForLine(
  proc: CliProcess,
  pattern: RegExp,
  timeoutMs = 10_000,
): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const match = pattern.exec(proc.stdout) ?? pattern.exec(proc.stderr);
    if (match) return match[0];
    if (proc.child.exitCode !== null) break;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(
    `no output matching ${pattern} within ${timeoutMs} ms\nstdout: ${proc.stdout}\nstderr: ${proc.stderr}`,
  );
}

/** Parses NDJSON output, one event per line. */
export function parseNdjson(text: string): Record<string, unknown>[] {
  return text
    .split("\n")
    .filter((line) => line.trim() !== "")
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}
