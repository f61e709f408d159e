import * as restate from "@restatedev/restate-sdk";
import { deadline } from "./deadline.js";
import type { ToolSpec } from "./llm/chat.js";
import {
  builtinTools,
  commandTool,
  ToolError,
  toolRegistry,
  type CommandToolConfig,
  type ToolDefinition,
} from "./tools/index.js";
import type { ErrorData, RetrySettings } from "./types.js";

/** Which tools an agent job may use and where they may reach. Part of the job input: no secrets. */
export interface ToolsConfig {
  enabled: string[];
  allowRoots: string[];
  allowHosts: string[];
  commands: CommandToolConfig[];
  cwd: string;
}

export interface ToolCallRequest {
  job: string;
  callId: string;
  name: string;
  args: unknown;
  tools: ToolsConfig;
  retry: RetrySettings;
}

/** A tool's result as the model will see it. Failures are data: the model decides what to do next. */
export interface ToolCallOutcome {
  ok: boolean;
  content: string;
  error?: ErrorData;
  ms: number;
}

/** The tools a job's config makes available, by name. */
export function toolsFor(config: ToolsConfig): Map<string, ToolDefinition> {
  const all = [...builtinTools, ...config.commands.map((c) => commandTool(c))];
  return toolRegistry(all.filter((tool) => config.enabled.includes(tool.name)));
}

/** The tool list sent to the model. */
export function toolSpecs(config: ToolsConfig): ToolSpec[] {
  return [...toolsFor(config).values()].map((tool) => ({
    type: "function",
    function: {
      name: tool.name,
      description: tool.description,
      parameters: tool.jsonSchema,
    },
  }));
}

function failure(message: string, ms = 0): ToolCallOutcome {
  return { ok: false, content: `error: ${message}`, error: { message }, ms };
}

/**
 * A pure tool's call as a step of the calling invocation (the agent's own): it cannot fail
 * transiently, so it needs no invocation and retry policy of its own, and every failure is data.
 * Saves an invocation per call where an agent fans out many cheap calls (see bench scenario 3).
 */
export function pureToolStep(
  ctx: restate.Context,
  tool: ToolDefinition,
  req: ToolCallRequest,
): restate.RestatePromise<ToolCallOutcome> {
  return ctx.run(`tool ${req.name} ${req.callId}`, async (): Promise<ToolCallOutcome> => {
    const started = performance.now();
    try {
      const content = await tool.run(tool.parse(req.args), {
        allowRoots: req.tools.allowRoots,
        allowHosts: req.tools.allowHosts,
        cwd: req.tools.cwd,
        signal: ctx.request().attemptCompletedSignal,
      });
      return { ok: true, content, ms: Math.round(performance.now() - started) };
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      return failure(message, Math.round(performance.now() - started));
    }
  });
}

/** Runs one tool call as a durable step; transient failures are retried, the rest become error results. */
export async function runTool(
  ctx: restate.Context,
  req: ToolCallRequest,
): Promise<ToolCallOutcome> {
  const tool = toolsFor(req.tools).get(req.name);
  if (!tool) {
    const known = [...toolsFor(req.tools).keys()].join(", ");
    return failure(`unknown tool "${req.name}"; available tools: ${known || "none"}`);
  }
  let args: unknown;
  try {
    args = tool.parse(req.args);
  } catch (error) {
    // Tools' own parsers already say "invalid arguments for NAME: …"; don't say it twice.
    const message = (error as Error).message;
    const prefix = `invalid arguments for ${req.name}`;
    return failure(message.startsWith(prefix) ? message : `${prefix}: ${message}`);
  }
  try {
    return await ctx.run(
      `tool ${req.name} ${req.callId}`,
      async (): Promise<ToolCallOutcome> => {
        const started = performance.now();
        const limit = deadline(ctx.request().attemptCompletedSignal, req.retry.taskTimeoutMs);
        try {
          const content = await tool.run(args, {
            allowRoots: req.tools.allowRoots,
            allowHosts: req.tools.allowHosts,
            cwd: req.tools.cwd,
            signal: limit.signal,
          });
          return { ok: true, content, ms: Math.round(performance.now() - started) };
        } catch (error) {
          // Transient failures (network, 5xx) go back to Restate to be retried with backoff.
          if (error instanceof ToolError && error.retryable) throw error;
          const message = error instanceof Error ? error.message : String(error);
          return failure(message, Math.round(performance.now() - started));
        } finally {
          limit.clear();
        }
      },
      {
        maxRetryAttempts: req.retry.maxAttempts,
        initialRetryInterval: req.retry.initialIntervalMs,
        maxRetryInterval: req.retry.maxIntervalMs,
      },
    );
  } catch (error) {
    if (error instanceof restate.TerminalError && !(error instanceof restate.CancelledError)) {
      return failure(
        `${req.name} failed after ${req.retry.maxAttempts} attempts: ${error.message}`,
      );
    }
    throw error;
  }
}
