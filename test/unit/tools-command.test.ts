import { readFileSync } from "node:fs";
import { mkdtemp, readFile, realpath, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  commandTool,
  commandToolConfigSchema,
  ToolError,
  type ToolContext,
} from "../../services/tools/index.js";

const node = process.execPath;
let dir: string;
let ctx: ToolContext;

beforeAll(async () => {
  dir = await realpath(await mkdtemp(path.join(tmpdir(), "pagent-cmd-")));
  ctx = { allowRoots: [], allowHosts: [], signal: new AbortController().signal, cwd: dir };
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
  // In containers without a reaping init, a killed orphan lingers as a zombie; that is dead.
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) !== "Z";
  } catch {
    return true;
  }
}

async function readPid(file: string): Promise<number> {
  for (let i = 0; i < 100; i++) {
    const text = await readFile(file, "utf8").catch(() => "");
    if (text.trim() !== "") return Number(text);
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`no pid in ${file}`);
}

const ECHO = `
let input = "";
process.stdin.on("data", (d) => (input += d));
process.stdin.on("end", () => {
  process.stdout.write(JSON.stringify({ argv: process.argv.slice(1), stdin: JSON.parse(input), cwd: process.cwd() }));
});`;

describe("command tools", () => {
  const echo = commandTool({
    name: "echo_args",
    description: "Echo argv and stdin",
    argv: [node, "-e", ECHO, "--", "--query={{query}}", "{{query}}", "n={{n}}"],
    schema: {
      type: "object",
      properties: { query: { type: "string" }, n: { type: "integer", minimum: 1 } },
      required: ["query", "n"],
      additionalProperties: false,
    },
  });

  it("substitutes placeholders into single argv elements, without a shell", async () => {
    const hostile = `; rm -rf / && echo $(whoami) "quoted" 'single' \`tick\` | cat {{n}}\nline2`;
    const out = await echo.run(echo.parse({ query: hostile, n: 3 }), ctx);
    const parsed = JSON.parse(out) as { argv: string[]; stdin: unknown; cwd: string };
    expect(parsed.argv).toEqual([`--query=${hostile}`, hostile, "n=3"]);
    expect(parsed.stdin).toEqual({ query: hostile, n: 3 });
    expect(parsed.cwd).toBe(dir);
  });

  it("is not read-only and sends the given schema to the LLM", () => {
    expect(echo.readOnly).toBe(false);
    expect(echo.jsonSchema).toMatchObject({ required: ["query", "n"] });
  });

  it("validates arguments against the JSON schema", () => {
    const attempt = (raw: unknown): unknown => {
      try {
        return echo.parse(raw);
      } catch (err) {
        return err;
      }
    };
    const missing = attempt({ query: "x" });
    expect(missing).toBeInstanceOf(ToolError);
    expect(missing).toMatchObject({
      kind: "invalid_args",
      message: expect.stringMatching(/n:/) as unknown,
    });
    expect(attempt({ query: "x", n: 0 })).toMatchObject({ kind: "invalid_args" });
    expect(attempt({ query: "x", n: 1, extra: true })).toMatchObject({ kind: "invalid_args" });
    expect(attempt({ query: 5, n: 1 })).toMatchObject({ kind: "invalid_args" });
    expect(attempt('{"query":"x","n":2}')).toEqual({ query: "x", n: 2 });
  });

  it("without a schema requires the placeholders and accepts any other keys", async () => {
    const tool = commandTool({
      name: "loose",
      description: "d",
      argv: [node, "-e", ECHO, "{{word}}"],
    });
    expect(tool.jsonSchema).toMatchObject({ type: "object", required: ["word"] });
    expect(() => tool.parse({})).toThrow(/word/);
    const out = JSON.parse(await tool.run(tool.parse({ word: 42, other: [1] }), ctx)) as {
      argv: string[];
      stdin: unknown;
    };
    expect(out.argv).toEqual(["42"]);
    expect(out.stdin).toEqual({ word: 42, other: [1] });

    const noArgs = commandTool({ name: "none", description: "d", argv: [node, "-e", ECHO] });
    expect(noArgs.parse({ anything: { goes: true } })).toEqual({ anything: { goes: true } });
  });

  it("rejects a call that leaves a placeholder without a value", async () => {
    const tool = commandTool({
      name: "optional",
      description: "d",
      argv: [node, "-e", ECHO, "{{maybe}}"],
      schema: { type: "object", properties: { maybe: { type: "string" } } },
    });
    await expect(tool.run(tool.parse({}), ctx)).rejects.toMatchObject({
      kind: "invalid_args",
      message: expect.stringMatching(/"maybe" is required/) as unknown,
    });
  });

  it("reports a non-zero exit with the end of stderr", async () => {
    const tool = commandTool({
      name: "fails",
      description: "d",
      argv: [
        node,
        "-e",
        'for (let i = 0; i < 50; i++) console.error("line " + i); process.exit(3)',
      ],
    });
    const err = (await tool.run({}, ctx).catch((e: unknown) => e)) as ToolError;
    expect(err).toBeInstanceOf(ToolError);
    expect(err.kind).toBe("failed");
    expect(err.message).toMatch(/^fails exited with code 3; stderr:\n/);
    expect(err.message).toMatch(/line 49$/);
    expect(err.message).not.toMatch(/line 29\n/);
  });

  it("kills a command that runs past its timeout, and everything it spawned", async () => {
    const pidFile = path.join(dir, "pids-timeout");
    const script = `
      const { spawn } = require("node:child_process");
      const fs = require("node:fs");
      process.on("SIGTERM", () => {}); // must be SIGKILLed after the grace period
      const grandchild = spawn(process.execPath, ["-e", "setInterval(() => {}, 1000)"], { stdio: "inherit" });
      fs.writeFileSync(${JSON.stringify(pidFile)}, process.pid + " " + grandchild.pid);
      setInterval(() => {}, 1000);`;
    const tool = commandTool({
      name: "sleepy",
      description: "d",
      argv: [node, "-e", script],
      timeoutMs: 500,
    });
    const started = Date.now();
    const pending = tool.run({}, ctx);
    const pidText = await (async () => {
      for (let i = 0; i < 100; i++) {
        const t = await readFile(pidFile, "utf8").catch(() => "");
        if (t.includes(" ")) return t;
        await new Promise((r) => setTimeout(r, 20));
      }
      throw new Error("no pids");
    })();
    const [pid, grandPid] = pidText.split(" ").map(Number) as [number, number];
    await expect(pending).rejects.toMatchObject({
      kind: "timeout",
      retryable: false,
      message: expect.stringMatching(/timed out after 500 ms/) as unknown,
    });
    const elapsed = Date.now() - started;
    expect(elapsed).toBeGreaterThanOrEqual(1_400); // 500 ms timeout + 1 s SIGTERM grace
    expect(elapsed).toBeLessThan(10_000);
    expect(isAlive(pid)).toBe(false);
    // The grandchild is reparented, so give init a moment to reap it.
    for (let i = 0; i < 50 && isAlive(grandPid); i++) await new Promise((r) => setTimeout(r, 20));
    expect(isAlive(grandPid)).toBe(false);
  });

  it("kills a command when the caller aborts", async () => {
    const pidFile = path.join(dir, "pid-abort");
    const tool = commandTool({
      name: "abortable",
      description: "d",
      argv: [
        node,
        "-e",
        `require("node:fs").writeFileSync(${JSON.stringify(pidFile)}, String(process.pid)); setInterval(() => {}, 1000)`,
      ],
    });
    const controller = new AbortController();
    const pending = tool.run({}, { ...ctx, signal: controller.signal });
    const pid = await readPid(pidFile);
    controller.abort();
    await expect(pending).rejects.toMatchObject({ kind: "failed", message: "abortable aborted" });
    expect(isAlive(pid)).toBe(false);
    await expect(tool.run({}, { ...ctx, signal: controller.signal })).rejects.toMatchObject({
      kind: "failed",
    });
  });

  it("fails clearly when the program does not exist", async () => {
    const tool = commandTool({
      name: "ghost",
      description: "d",
      argv: [path.join(dir, "no-such-program")],
    });
    await expect(tool.run({}, ctx)).rejects.toMatchObject({
      kind: "failed",
      message: expect.stringMatching(/program not found/) as unknown,
    });
  });

  it("caps stdout, runs in the configured cwd, and reports empty output", async () => {
    const big = commandTool(
      {
        name: "big",
        description: "d",
        argv: [node, "-e", 'process.stdout.write("z".repeat(5000))'],
      },
      { maxOutputBytes: 100 },
    );
    expect(await big.run({}, ctx)).toBe(
      `${"z".repeat(100)}\n[truncated: output exceeded 100 bytes]`,
    );

    const where = commandTool({
      name: "where",
      description: "d",
      argv: [node, "-e", "process.stdout.write(process.cwd())"],
      cwd: "..",
    });
    expect(await where.run({}, ctx)).toBe(path.dirname(dir));

    const quiet = commandTool({ name: "quiet", description: "d", argv: [node, "-e", ""] });
    expect(await quiet.run({}, ctx)).toBe("(no output)");
  });

  it("rejects invalid configs", () => {
    expect(() => commandTool({ name: "bad name!", description: "d", argv: ["x"] })).toThrow(/name/);
    expect(() => commandTool({ name: "t", description: "d", argv: [] })).toThrow(/argv/);
    expect(() => commandTool({ name: "t", description: "d", argv: ["{{prog}}"] })).toThrow(
      /argv\[0\]/,
    );
    expect(() =>
      commandTool({
        name: "t",
        description: "d",
        argv: ["grep", "{{pattern}}"],
        schema: { type: "object", properties: { other: { type: "string" } } },
      }),
    ).toThrow(/pattern/);
    expect(() =>
      commandTool({ name: "t", description: "d", argv: ["x"], schema: { type: "string" } }),
    ).toThrow(/type.*object/);
    expect(
      commandToolConfigSchema.safeParse({ name: "t", description: "d", argv: ["ls"] }).success,
    ).toBe(true);
    expect(
      commandToolConfigSchema.safeParse({ name: "t", description: "d", argv: ["ls"], typo: 1 })
        .success,
    ).toBe(false);
  });
});
