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
import type { McpCallTarget, McpServerSpec } from "./mcp/spec.js";
import { stepRetryPolicy, type ErrorData, type RetrySettings } from "./types.js";

/** Which tools an agent job may use and where they may reach. Part of the job input: no secrets. */
export interface ToolsConfig {
  enabled: string[];
  allowRoots: string[];
  allowHosts: string[];
  commands: CommandToolConfig[];
  cwd: string;
  /** MCP servers the job may use, as configured (`${VAR}` unexpanded). */
  mcp?: McpServerSpec[];
}

export interface ToolCallRequest {
  job: string;
  callId: string;
  name: string;
  args: unknown;
  tools: ToolsConfig;
  retry: RetrySettings;
  /** Set for an MCP tool: the server and the server's own tool name, from the job's recorded list. */
  mcp?: McpCallTarget;
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
export function toolSpecs(registry: Map<string, ToolDefinition>): ToolSpec[] {
  return [...registry.values()].map((tool) => ({
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

/** Validated arguments, or the error result the model gets for invalid ones. */
function parseToolArgs(
  tool: ToolDefinition,
  req: ToolCallRequest,
): { args: unknown } | { invalid: ToolCallOutcome } {
  try {
    return { args: tool.parse(req.args) };
  } catch (error) {
    // Tools' own parsers already say "invalid arguments for NAME: …"; don't say it twice.
    const message = (error as Error).message;
    const prefix = `invalid arguments for ${req.name}`;
    return { invalid: failure(message.startsWith(prefix) ? message : `${prefix}: ${message}`) };
  }
}

/**
 * One attempt of a tool call, timed. Failures become error results, except transient ones when
 * `retryTransient` is set: those go back to Restate to be retried with backoff.
 */
async function attemptTool(
  tool: ToolDefinition,
  args: unknown,
  req: ToolCallRequest,
  signal: AbortSignal,
  retryTransient: boolean,
  grantedRoots?: string[],
): Promise<ToolCallOutcome> {
  const started = performance.now();
  const ms = () => Math.round(performance.now() - started);
  try {
    const content = await tool.run(args, {
      allowRoots: req.tools.allowRoots,
      ...(grantedRoots ? { grantedRoots } : {}),
      allowHosts: req.tools.allowHosts,
      cwd: req.tools.cwd,
      signal,
    });
    return { ok: true, content, ms: ms() };
  } catch (error) {
    if (retryTransient && error instanceof ToolError && error.retryable) throw error;
    return failure(error instanceof Error ? error.message : String(error), ms());
  }
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
    const parsed = parseToolArgs(tool, req);
    if ("invalid" in parsed) return parsed.invalid;
    return attemptTool(tool, parsed.args, req, ctx.request().attemptCompletedSignal, false);
  });
}

/**
 * Runs one tool call as a durable step; transient failures are retried, the rest become error results.
 * `grantedRoots`: the endpoint's, checked again by the file tools when they run (see ToolContext).
 */
export async function runTool(
  ctx: restate.Context,
  req: ToolCallRequest,
  grantedRoots?: string[],
): Promise<ToolCallOutcome> {
  const registry = toolsFor(req.tools);
  const tool = registry.get(req.name);
  if (!tool) {
    const known = [...registry.keys()].join(", ");
    return failure(`unknown tool "${req.name}"; available tools: ${known || "none"}`);
  }
  const parsed = parseToolArgs(tool, req);
  if ("invalid" in parsed) return parsed.invalid;
  try {
    return await ctx.run(
      `tool ${req.name} ${req.callId}`,
      async (): Promise<ToolCallOutcome> => {
        const limit = deadline(ctx.request().attemptCompletedSignal, req.retry.taskTimeoutMs);
        try {
          return await attemptTool(tool, parsed.args, req, limit.signal, true, grantedRoots);
        } finally {
          limit.clear();
        }
      },
      stepRetryPolicy(req.retry),
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
