import { realpathSync } from "node:fs";
import path from "node:path";
import type { Command } from "commander";
import type { AskRequest, ToolsConfig } from "../../services/index.js";
import { builtinTools, commandTool } from "../../services/tools/index.js";
import { parsePositiveInt, type ConfigFile } from "../config.js";
import { commandContext, type App } from "../context.js";
import { UsageError } from "../errors.js";
import { readStream } from "../inputs.js";
import { checkJobId, randomId } from "../jobs/ids.js";
import { runSubmission } from "../jobs/run.js";
import { jobBounds, modelSpec, retrySettings, stderrWarning } from "./shared.js";

interface AskFlags {
  system?: string;
  maxSteps?: string;
  tools?: string;
  allowRoot: string[];
  allowHost: string[];
  id?: string;
}

const collect = (value: string, all: string[]) => [...all, value];

/** Tool selection and confinement for an agent job; everything here is recorded in the job. */
export function toolsConfig(file: ConfigFile, flags: AskFlags, cwd: string): ToolsConfig {
  const commands = Object.entries(file.tools ?? {}).map(([name, def]) => ({
    name,
    description: def.description,
    argv: def.argv,
    ...(def.timeoutMs !== undefined ? { timeoutMs: def.timeoutMs } : {}),
    ...(def.schema !== undefined ? { schema: def.schema } : {}),
    cwd,
  }));
  // The endpoint builds every tool of the job before running any: a config it cannot build would
  // make the job fail on every retry, so it is refused here, before anything is submitted.
  for (const command of commands) {
    if (builtinTools.some((t) => t.name === command.name)) {
      throw new UsageError(
        `config tool "${command.name}" has the name of a built-in tool; give it another name`,
      );
    }
    try {
      commandTool(command);
    } catch (error) {
      throw new UsageError((error as Error).message);
    }
  }
  const available = [...builtinTools.map((t) => t.name), ...commands.map((c) => c.name)];
  const enabled = flags.tools
    ? flags.tools
        .split(",")
        .map((s) => s.trim())
        .filter(Boolean)
    : available;
  const unknown = enabled.filter((name) => !available.includes(name));
  if (unknown.length > 0) {
    throw new UsageError(`unknown tool ${unknown.join(", ")}; available: ${available.join(", ")}`);
  }
  const roots = [...flags.allowRoot, ...(file.allowRoots ?? [])];
  const allowRoots = (roots.length > 0 ? roots : [cwd]).map((root) => {
    try {
      return realpathSync(path.resolve(cwd, root));
    } catch {
      throw new UsageError(`--allow-root ${root}: no such directory`);
    }
  });
  return {
    enabled,
    allowRoots,
    allowHosts: [...flags.allowHost, ...(file.allowHosts ?? [])],
    commands,
    cwd,
  };
}

export function registerAsk(program: Command, app: App): void {
  program
    .command("ask")
    .description(
      "run a tool-using agent on PROMPT (or stdin); tool calls of one turn run in parallel",
    )
    .argument("[prompt]", "the prompt; - reads stdin")
    .option("--system <text>", "system prompt")
    .option("--max-steps <n>", "most LLM turns before giving up (default 8)")
    .option("--tools <names>", "comma-separated tools the agent may use (default: all)")
    .option(
      "--allow-root <dir>",
      "directory read_file/list_files may read (repeatable; default: cwd)",
      collect,
      [],
    )
    .option(
      "--allow-host <host>",
      "host http_get may fetch (repeatable; default: none)",
      collect,
      [],
    )
    .option("--id <key>", "job id; the same id attaches to the same job (default: a new job)")
    .action(async (promptArg: string | undefined, flags: AskFlags, command: Command) => {
      const ctx = commandContext(app, command.optsWithGlobals());
      const model = modelSpec(ctx.config);
      let prompt = promptArg;
      if (prompt === undefined || prompt === "-") {
        if (prompt === undefined && app.stdin.isTTY) {
          throw new UsageError('no prompt: pass pagent ask "PROMPT", or pipe it on stdin');
        }
        prompt = (await readStream(app.stdin, 1024 * 1024, app.signal)).toString("utf8");
      }
      if (prompt.trim() === "")
        throw new UsageError("the prompt is empty; say what the agent should do");
      const request: AskRequest = {
        job: flags.id ? checkJobId(flags.id) : randomId("ask"),
        input: promptArg === undefined || promptArg === "-" ? "-" : "prompt",
        prompt,
        ...(flags.system ? { system: flags.system } : {}),
        maxSteps: flags.maxSteps ? parsePositiveInt(flags.maxSteps, "--max-steps") : 8,
        model,
        tools: toolsConfig(ctx.config.file, flags, app.cwd),
        retry: retrySettings(ctx.config),
        retentionMs: ctx.config.retentionMs,
        ...jobBounds(ctx.config, model),
      };
      const runtime = await ctx.openRuntime();
      const submission = { kind: "ask" as const, request };
      app.finish(
        await runSubmission(runtime, submission, ctx.reporter, app.signal, stderrWarning(app)),
      );
    });
}
