import { spawn } from "node:child_process";
import path from "node:path";
import { z } from "zod";
import { formatIssues, parseArgs, throwIfAborted } from "./define-tool.js";
import { ToolError, type ToolDefinition } from "./types.js";

/** Default wall-clock limit for a command tool run. */
export const DEFAULT_COMMAND_TIMEOUT_MS = 30_000;
/** Default number of stdout bytes kept as the result. */
export const DEFAULT_COMMAND_MAX_OUTPUT_BYTES = 1024 * 1024;
/** Time between SIGTERM and SIGKILL when a command has to be stopped. */
export const KILL_GRACE_MS = 1_000;

const STDERR_TAIL_BYTES = 16 * 1024;
const STDERR_TAIL_LINES = 20;

const PLACEHOLDER = /\{\{\s*([A-Za-z_][A-Za-z0-9_-]*)\s*\}\}/g;

function placeholdersIn(text: string): string[] {
  return [...text.matchAll(PLACEHOLDER)].map((m) => m[1] ?? "");
}

/** Schema of one entry of the user's command tool config file. */
export const commandToolConfigSchema = z.strictObject({
  // Provider function-calling APIs accept only this alphabet for tool names.
  name: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, "must be 1-64 letters, digits, '_' or '-'"),
  description: z.string().min(1),
  argv: z
    .array(z.string())
    .min(1)
    // The program itself must not be chosen by the model.
    .refine((argv) => placeholdersIn(argv[0] ?? "").length === 0 && argv[0] !== "", {
      message: "argv[0] must be a fixed, non-empty program name without {{placeholders}}",
    }),
  timeoutMs: z.number().int().positive().optional(),
  schema: z.record(z.string(), z.unknown()).optional(),
  cwd: z.string().optional(),
});

/** A user-defined tool that runs a program without a shell; see commandToolConfigSchema. */
export type CommandToolConfig = z.input<typeof commandToolConfigSchema>;

/** Arguments of a command tool: whatever object the schema allows. */
export type CommandToolArgs = Record<string, unknown>;

function buildArgs(
  config: z.output<typeof commandToolConfigSchema>,
  placeholders: string[],
): { argsSchema: z.ZodType<CommandToolArgs>; jsonSchema: Record<string, unknown> } {
  const where = `command tool "${config.name}"`;
  if (config.schema) {
    if (config.schema.type !== "object") {
      throw new Error(`${where}: schema must be a JSON Schema with "type": "object"`);
    }
    const properties = config.schema.properties;
    if (properties !== undefined && typeof properties === "object" && properties !== null) {
      const missing = placeholders.filter((p) => !Object.hasOwn(properties, p));
      if (missing.length > 0) {
        throw new Error(
          `${where}: argv uses {{${missing.join("}}, {{")}}} not in schema.properties`,
        );
      }
    }
    let converted: z.ZodType;
    try {
      converted = z.fromJSONSchema(config.schema);
    } catch (err) {
      throw new Error(`${where}: unsupported schema: ${(err as Error).message}`, { cause: err });
    }
    return {
      argsSchema: converted as z.ZodType<CommandToolArgs>,
      jsonSchema: config.schema,
    };
  }
  // Without a schema the placeholders are the only thing known to be needed; other keys pass.
  const scalar = z.union([z.string(), z.number(), z.boolean()]);
  const unique = [...new Set(placeholders)];
  return {
    argsSchema: z.looseObject(Object.fromEntries(unique.map((p) => [p, scalar]))),
    jsonSchema: {
      type: "object",
      properties: Object.fromEntries(
        unique.map((p) => [p, { type: "string", description: `Value for {{${p}}}` }]),
      ),
      required: unique,
      additionalProperties: true,
    },
  };
}

function argumentText(args: CommandToolArgs, name: string): string {
  const value = args[name];
  if (value === undefined || value === null) {
    throw new ToolError("invalid_args", `argument "${name}" is required by the command line`);
  }
  if (typeof value === "string") return value;
  if (typeof value === "number" || typeof value === "boolean" || typeof value === "bigint") {
    return String(value);
  }
  return JSON.stringify(value);
}

/** Substitutes `{{name}}` in argv[1..]; each value stays one argv element, never shell-parsed. */
export function expandArgv(argv: readonly string[], args: CommandToolArgs): string[] {
  return argv.map((part, i) =>
    i === 0 ? part : part.replace(PLACEHOLDER, (_m, name: string) => argumentText(args, name)),
  );
}

function tailLines(text: string): string {
  const lines = text.trimEnd().split(/\r?\n/);
  return lines.slice(-STDERR_TAIL_LINES).join("\n");
}

/** Turns a command tool config into a ToolDefinition; throws Error on an invalid config. */
export function commandTool(
  input: CommandToolConfig,
  options: { maxOutputBytes?: number; killGraceMs?: number } = {},
): ToolDefinition<CommandToolArgs> {
  const parsed = commandToolConfigSchema.safeParse(input);
  if (!parsed.success) {
    // The input may come straight from a JSON file, whatever its declared type.
    const rawName: unknown = typeof input === "object" && input !== null ? input.name : undefined;
    const label = typeof rawName === "string" ? ` "${rawName}"` : "";
    throw new Error(`invalid command tool config${label}: ${formatIssues(parsed.error.issues)}`);
  }
  const config = parsed.data;
  const { name } = config;
  const timeoutMs = config.timeoutMs ?? DEFAULT_COMMAND_TIMEOUT_MS;
  const maxOutputBytes = options.maxOutputBytes ?? DEFAULT_COMMAND_MAX_OUTPUT_BYTES;
  const killGraceMs = options.killGraceMs ?? KILL_GRACE_MS;
  const placeholders = config.argv.slice(1).flatMap(placeholdersIn);
  const { argsSchema, jsonSchema } = buildArgs(config, placeholders);

  return {
    name,
    description: config.description,
    readOnly: false,
    argsSchema,
    jsonSchema,
    parse: (raw) => parseArgs(name, argsSchema, raw),
    run: async (args, ctx) => {
      throwIfAborted(ctx.signal, name);
      const [program = "", ...rest] = expandArgv(config.argv, args);
      return runCommand({
        name,
        program,
        args: rest,
        cwd: path.resolve(ctx.cwd, config.cwd ?? "."),
        // Trailing newline: line-oriented readers (`read line` in sh) treat EOF without one as failure.
        stdin: `${JSON.stringify(args)}\n`,
        timeoutMs,
        maxOutputBytes,
        killGraceMs,
        signal: ctx.signal,
      });
    },
  };
}

interface RunCommandOptions {
  name: string;
  program: string;
  args: string[];
  cwd: string;
  stdin: string;
  timeoutMs: number;
  maxOutputBytes: number;
  killGraceMs: number;
  signal: AbortSignal;
}

function runCommand(opts: RunCommandOptions): Promise<string> {
  const { name } = opts;
  // Its own process group (POSIX), so stopping it also stops whatever it spawned, which
  // could otherwise hold stdout open and keep us waiting.
  const ownGroup = process.platform !== "win32";
  const child = spawn(opts.program, opts.args, {
    shell: false,
    cwd: opts.cwd,
    stdio: ["pipe", "pipe", "pipe"],
    detached: ownGroup,
    windowsHide: true,
  });

  return new Promise<string>((resolve, reject) => {
    const stdout: Buffer[] = [];
    let stdoutBytes = 0;
    let truncated = false;
    let stderrTail = Buffer.alloc(0);
    let stoppedFor: "timeout" | "aborted" | undefined;
    let exited = false;
    let settled = false;
    let graceTimer: NodeJS.Timeout | undefined;

    const signalChild = (sig: NodeJS.Signals): void => {
      try {
        if (ownGroup && child.pid !== undefined) process.kill(-child.pid, sig);
        else child.kill(sig);
      } catch {
        // Already gone.
      }
    };
    const releaseStreams = (): void => {
      // A grandchild that left the process group could keep the pipes open forever.
      child.stdout.destroy();
      child.stderr.destroy();
    };
    const stop = (reason: "timeout" | "aborted"): void => {
      if (stoppedFor || settled) return;
      stoppedFor = reason;
      signalChild("SIGTERM");
      graceTimer = setTimeout(() => signalChild("SIGKILL"), opts.killGraceMs);
      if (exited) releaseStreams();
    };
    const onAbort = (): void => stop("aborted");
    const timer = setTimeout(() => stop("timeout"), opts.timeoutMs);
    opts.signal.addEventListener("abort", onAbort, { once: true });

    const finish = (outcome: () => string): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      clearTimeout(graceTimer);
      opts.signal.removeEventListener("abort", onAbort);
      try {
        resolve(outcome());
      } catch (err) {
        reject(err instanceof Error ? err : new Error(String(err)));
      }
    };

    child.stdout.on("data", (chunk: Buffer) => {
      const room = opts.maxOutputBytes - stdoutBytes;
      if (chunk.length > room) truncated = true;
      if (room <= 0) return; // keep draining so the child never blocks on a full pipe
      const kept = chunk.length > room ? chunk.subarray(0, room) : chunk;
      stdout.push(kept);
      stdoutBytes += kept.length;
    });
    child.stderr.on("data", (chunk: Buffer) => {
      stderrTail = Buffer.concat([stderrTail, chunk]);
      if (stderrTail.length > STDERR_TAIL_BYTES) {
        stderrTail = stderrTail.subarray(stderrTail.length - STDERR_TAIL_BYTES);
      }
    });
    // A child that exits without reading stdin makes the write fail with EPIPE; that's fine.
    child.stdin.on("error", () => undefined);
    child.stdin.end(opts.stdin);

    child.on("error", (err: NodeJS.ErrnoException) => {
      if (child.pid !== undefined) return; // kill() failures after a successful spawn
      finish(() => {
        const reason =
          err.code === "ENOENT"
            ? `program not found, or working directory ${opts.cwd} missing`
            : err.message;
        throw new ToolError("failed", `${name}: cannot run ${opts.program}: ${reason}`, {
          cause: err,
        });
      });
    });
    child.on("exit", () => {
      exited = true;
      if (stoppedFor) releaseStreams();
    });
    child.on("close", (code, signal) => {
      finish(() => {
        const stderrText = tailLines(new TextDecoder().decode(stderrTail));
        const withStderr = (msg: string): string =>
          stderrText ? `${msg}; stderr:\n${stderrText}` : msg;
        if (stoppedFor === "timeout") {
          throw new ToolError(
            "timeout",
            `${name} timed out after ${opts.timeoutMs} ms and was killed`,
          );
        }
        if (stoppedFor === "aborted") {
          throw new ToolError("failed", `${name} aborted`, { cause: opts.signal.reason });
        }
        if (signal) throw new ToolError("failed", withStderr(`${name} was killed by ${signal}`));
        if (code !== 0)
          throw new ToolError("failed", withStderr(`${name} exited with code ${code}`));
        const bytes = Buffer.concat(stdout, stdoutBytes);
        const text = new TextDecoder("utf-8").decode(bytes, { stream: truncated });
        if (truncated) return `${text}\n[truncated: output exceeded ${opts.maxOutputBytes} bytes]`;
        return text === "" ? "(no output)" : text;
      });
    });
  });
}
