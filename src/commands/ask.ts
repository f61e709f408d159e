import type { Command } from "commander";
import type { AskRequest, ToolsConfig } from "../../services/index.js";
import { builtinTools } from "../../services/tools/index.js";
import { parsePositiveInt, type ConfigFile, type GlobalFlags } from "../config.js";
import { mcpDefinitions } from "../mcp.js";
import { commandContext, type App } from "../context.js";
import { UsageError } from "../errors.js";
import { readStream } from "../inputs.js";
import { checkJobId, randomId } from "../jobs/ids.js";
import { runSubmission } from "../jobs/run.js";
import {
  askedBy,
  commandDefinitions,
  jobBounds,
  modelSpec,
  realRoots,
  retrySettings,
  stderrWarning,
} from "./shared.js";

interface AskFlags {
  system?: string;
  maxSteps?: string;
  tools?: string;
  allowRoot?: string[];
  allowHost?: string[];
  id?: string;
}

/** A repeatable flag; no default value, so help does not print `(default: [])` after our own default. */
const collect = (value: string, all: string[] | undefined) => [...(all ?? []), value];

/** Tool selection and confinement for an agent job; everything here is recorded in the job. */
export function toolsConfig(
  file: ConfigFile,
  flags: AskFlags,
  cwd: string,
  mcpSelection?: string,
): ToolsConfig {
  const commands = commandDefinitions(file, cwd);
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
  const roots = [...(flags.allowRoot ?? []), ...(file.allowRoots ?? [])];
  const mcp = mcpDefinitions(file, mcpSelection, cwd, available);
  return {
    enabled,
    allowRoots: realRoots(roots.length > 0 ? roots : [cwd], cwd),
    allowHosts: [...(flags.allowHost ?? []), ...(file.allowHosts ?? [])],
    commands,
    cwd,
    ...(mcp.length > 0 ? { mcp } : {}),
  };
}

function promptStart(prompt: string, max = 40): string {
  const flat = prompt.replace(/\s+/g, " ").trim();
  return flat.length > max ? `${flat.slice(0, max - 1)}…` : flat;
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
    )
    .option("--allow-host <host>", "host http_get may fetch (repeatable; default: none)", collect)
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
        // How `pagent jobs` and the result name the job: the start of the prompt, or - for stdin.
        input: promptArg === undefined || promptArg === "-" ? "-" : promptStart(prompt),
        prompt,
        ...(flags.system ? { system: flags.system } : {}),
        maxSteps: flags.maxSteps ? parsePositiveInt(flags.maxSteps, "--max-steps") : 8,
        model,
        tools: toolsConfig(
          ctx.config.file,
          flags,
          app.cwd,
          command.optsWithGlobals<GlobalFlags>().mcp,
        ),
        retry: retrySettings(ctx.config),
        retentionMs: ctx.config.retentionMs,
        ...jobBounds(ctx.config, model),
      };
      const submission = { kind: "ask" as const, request };
      const runtime = await ctx.openRuntime(askedBy(submission));
      app.finish(
        await runSubmission(runtime, submission, ctx.reporter, app.signal, stderrWarning(app)),
      );
    });
}
