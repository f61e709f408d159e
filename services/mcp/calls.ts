/**
 * MCP tools in an agent job, the endpoint's side: listing a job's tools once (Tasks.mcpTools) and
 * each call as a step of its own Tasks.tool invocation. Loaded on first use, see lazy.ts.
 */
import * as restate from "@restatedev/restate-sdk";
import { ErrorCode, McpError, type Tool } from "@modelcontextprotocol/sdk/types.js";
import { deadline } from "../deadline.js";
import type { ToolCallOutcome, ToolCallRequest } from "../tool-runner.js";
import { stepRetryPolicy } from "../types.js";
import type { McpToolsOutcome, McpToolsRequest } from "./agent.js";
import { modelToolName, TOOL_NAME } from "./names.js";
import { McpServerError, type McpPool } from "./pool.js";
import { resultText } from "./result.js";
import type { McpCallTarget, McpServerSpec, McpToolEntry } from "./spec.js";

/** What the model receives for a call that a crash interrupted and that may not run twice. */
export const OUTCOME_UNKNOWN =
  "outcome unknown: the call was interrupted by a crash and was not repeated";

function isIdempotent(spec: McpServerSpec, tool: Tool): boolean {
  const marked = spec.idempotent === true || (spec.idempotent || []).includes(tool.name);
  return (
    marked || tool.annotations?.readOnlyHint === true || tool.annotations?.idempotentHint === true
  );
}

/** The tools of `servers` as the model will see them; throws on a name two tools would share. */
export async function describeServers(
  pool: McpPool,
  servers: McpServerSpec[],
): Promise<McpToolEntry[]> {
  const lists = await Promise.all(servers.map((spec) => pool.listTools(spec)));
  const entries = servers.flatMap((spec, i) =>
    lists[i]!.map((tool): McpToolEntry => ({
      name: modelToolName(spec.name, tool.name),
      server: spec.name,
      tool: tool.name,
      description: tool.description ?? tool.title ?? tool.name,
      inputSchema: tool.inputSchema,
      idempotent: isIdempotent(spec, tool),
    })),
  );
  const seen = new Map<string, McpToolEntry>();
  for (const entry of entries) {
    const other = seen.get(entry.name);
    if (other || !TOOL_NAME.test(entry.name)) {
      throw new McpServerError(
        `MCP tools "${other?.tool}" (server "${other?.server}") and "${entry.tool}" (server "${entry.server}") would both be called ${entry.name}; rename a server in mcpServers`,
        true,
      );
    }
    seen.set(entry.name, entry);
  }
  return entries;
}

/** Tasks.mcpTools: the servers' tools, listed once per job in a step with its own retries. */
export async function listMcpTools(
  ctx: restate.Context,
  pool: McpPool,
  req: McpToolsRequest,
): Promise<McpToolsOutcome> {
  try {
    const tools = await ctx.run(
      "mcp tools",
      async () => {
        try {
          return await describeServers(pool, req.servers);
        } catch (error) {
          if (error instanceof McpServerError && error.fatal)
            throw new restate.TerminalError(error.message);
          throw error;
        }
      },
      stepRetryPolicy(req.retry),
    );
    return { tools };
  } catch (error) {
    if (error instanceof restate.TerminalError && !(error instanceof restate.CancelledError))
      return { tools: [], error: { message: error.message } };
    throw error;
  }
}

function failure(message: string, ms = 0): ToolCallOutcome {
  return { ok: false, content: `error: ${message}`, error: { message }, ms };
}

/** The model's arguments as an object; its raw text when they were not valid JSON (see tasks.ts). */
function argsObject(raw: unknown): Record<string, unknown> | undefined {
  let value: unknown = raw ?? {};
  if (typeof value === "string") {
    try {
      value = JSON.parse(value) as unknown;
    } catch {
      return undefined;
    }
  }
  return value && typeof value === "object" && !Array.isArray(value)
    ? (value as Record<string, unknown>)
    : undefined;
}

/**
 * Tasks.tool for an MCP tool. At-least-once, said out loud: a call in flight at a crash may run
 * again. Idempotent tools simply retry. For any other tool a "started" step is journaled before the
 * call; a replay that finds it started but unanswered does not call again and tells the model so.
 */
export async function runMcpCall(
  ctx: restate.Context,
  pool: McpPool,
  req: ToolCallRequest & { mcp: McpCallTarget },
): Promise<ToolCallOutcome> {
  const { server, tool, idempotent } = req.mcp;
  const spec = req.tools.mcp?.find((s) => s.name === server);
  if (!spec) return failure(`MCP server "${server}" is not one of this job's servers`);
  const args = argsObject(req.args);
  if (!args) return failure(`invalid arguments for ${req.name}: expected a JSON object`);
  const timeoutMs = Math.min(spec.timeoutMs ?? Infinity, req.retry.taskTimeoutMs);
  const label = `tool ${req.name} ${req.callId}`;
  const retry = stepRetryPolicy(req.retry);
  try {
    let fresh = true;
    if (!idempotent) {
      // Started before the "started" mark, so a server that fails to start is retried freely: the
      // call was not sent.
      await ctx.run(
        `${label} server`,
        async () => {
          await pool.listTools(spec).catch(rethrow);
          return null;
        },
        retry,
      );
      fresh = false;
      await ctx.run(`${label} started`, () => {
        fresh = true;
        return Promise.resolve(true);
      });
    }
    return await ctx.run(
      label,
      async (): Promise<ToolCallOutcome> => {
        if (!fresh) return failure(OUTCOME_UNKNOWN);
        const started = performance.now();
        const ms = () => Math.round(performance.now() - started);
        const limit = deadline(ctx.request().attemptCompletedSignal, timeoutMs);
        try {
          const result = await pool.callTool(spec, tool, args, { timeoutMs, signal: limit.signal });
          const text = resultText(result);
          return result.isError ? failure(text, ms()) : { ok: true, content: text, ms: ms() };
        } catch (error) {
          if (error instanceof McpError && error.code === (ErrorCode.ConnectionClosed as number)) {
            // The server died with the call in flight: only an idempotent call may run again.
            if (idempotent) throw error;
            return failure(
              `MCP server "${server}" closed the connection during the call; it was not repeated, its outcome is unknown`,
              ms(),
            );
          }
          if (limit.signal.aborted && !ctx.request().attemptCompletedSignal.aborted)
            return failure(`${req.name} timed out after ${timeoutMs} ms`, ms());
          if (error instanceof McpError && error.code === (ErrorCode.RequestTimeout as number))
            return failure(`${req.name} timed out after ${timeoutMs} ms`, ms());
          // Invalid arguments, an unknown tool: the model can do something about these.
          if (error instanceof McpError) return failure(error.message, ms());
          return rethrow(error);
        } finally {
          limit.clear();
        }
      },
      retry,
    );
  } catch (error) {
    if (error instanceof restate.TerminalError && !(error instanceof restate.CancelledError))
      return failure(error.message);
    throw error;
  }
}

/** A server that cannot be started for good (missing command, 401/403) fails the call at once. */
function rethrow(error: unknown): never {
  if (error instanceof McpServerError && error.fatal)
    throw new restate.TerminalError(error.message);
  throw error;
}
