import { realpathSync } from "node:fs";
import path from "node:path";
import {
  askedByModel,
  askedByTools,
  emptyGrants,
  mergeGrants,
  type Asked,
} from "../../services/capabilities.js";
import type { JobBounds } from "../../services/job/contract.js";
import { builtinTools, commandTool, type CommandToolConfig } from "../../services/tools/index.js";
import {
  DEFAULT_RETRY,
  LOCAL_MODEL_NAME,
  type ModelSpec,
  type RetrySettings,
} from "../../services/types.js";
import type { ConfigFile, ResolvedConfig } from "../config.js";
import type { App } from "../context.js";
import { UsageError } from "../errors.js";
import type { Submission } from "../jobs/client.js";

/** Where a watching command says what holds its job up (a full disk): stderr, in every output mode. */
export function stderrWarning(app: App): (line: string) => void {
  return (line) => app.stderr.write(`pagent: ${line}\n`);
}

/** The model a job records. No model means no job: pagent never silently picks one. */
export function modelSpec(config: ResolvedConfig): ModelSpec {
  if (!config.model) {
    throw new UsageError(
      'no model configured: pass --model NAME (or set PAGENT_MODEL, or "model" in pagent.config.json), with --base-url for a non-OpenAI server; --model local runs offline',
    );
  }
  if (config.model === LOCAL_MODEL_NAME) return { name: LOCAL_MODEL_NAME };
  return {
    name: config.model,
    ...(config.provider
      ? { provider: config.provider }
      : config.baseUrl
        ? { baseUrl: config.baseUrl }
        : {}),
    ...(Object.keys(config.headers).length > 0 ? { headers: config.headers } : {}),
  };
}

export function retrySettings(config: ResolvedConfig): RetrySettings {
  return {
    ...DEFAULT_RETRY,
    maxAttempts: config.retries,
    taskTimeoutMs: config.taskTimeoutMs,
    ...(config.maxReplyBytes !== undefined ? { maxReplyBytes: config.maxReplyBytes } : {}),
  };
}

/** The bounds the user put on the job: provider limits, time limit, token budget, and the price. */
export function jobBounds(config: ResolvedConfig, model: ModelSpec): JobBounds {
  const limits = {
    ...(config.rpm !== undefined ? { rpm: config.rpm } : {}),
    ...(config.tpm !== undefined ? { tpm: config.tpm } : {}),
  };
  const price = config.prices[model.name];
  return {
    ...(Object.keys(limits).length > 0 ? { limits } : {}),
    ...(config.timeoutMs !== undefined ? { timeoutMs: config.timeoutMs } : {}),
    ...(config.maxTokensTotal !== undefined ? { maxTokensTotal: config.maxTokensTotal } : {}),
    ...(price ? { price } : {}),
  };
}

/**
 * The config file's command tools as full definitions, run in `cwd`. `pagent ask` sends these in the
 * job and `pagent serve` grants these, so one function builds both and equal configs match exactly.
 */
export function commandDefinitions(file: ConfigFile, cwd: string): CommandToolConfig[] {
  const commands = Object.entries(file.tools ?? {}).map(([name, def]) => ({
    name,
    description: def.description,
    argv: def.argv,
    ...(def.timeoutMs !== undefined ? { timeoutMs: def.timeoutMs } : {}),
    ...(def.schema !== undefined ? { schema: def.schema } : {}),
    // An absolute cwd in a config shared by the CLI and a remote `pagent serve` matches on both.
    cwd: path.resolve(cwd, def.cwd ?? "."),
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
  return commands;
}

/** `--allow-root` directories as real paths, so what is recorded and checked is where they lead. */
export function realRoots(roots: string[], cwd: string): string[] {
  return roots.map((root) => {
    try {
      return realpathSync(path.resolve(cwd, root));
    } catch {
      throw new UsageError(`--allow-root ${root}: no such directory`);
    }
  });
}

/** What a submission's jobs use, which the endpoint must have been granted. */
export function askedBy(submission: Submission): Asked {
  switch (submission.kind) {
    case "analyze":
      return askedByModel(submission.request.model);
    case "ask":
      return {
        ...askedByModel(submission.request.model),
        ...askedByTools(submission.request.tools),
      };
    case "batch":
      return submission.request.items.reduce(
        (all, item) =>
          "request" in item ? mergeGrants(all, askedByModel(item.request.model)) : all,
        emptyGrants(),
      );
  }
}
