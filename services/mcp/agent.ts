/**
 * MCP tools in an agent job, the job's side: the journaled list of tools a job is given
 * ({@link offeredMcpTools}) and which MCP tool a call reaches ({@link mcpTarget}). The endpoint's
 * side, which talks to the servers, is calls.ts: loaded with the MCP SDK only when a job first uses
 * an MCP server (lazy.ts), so an endpoint whose jobs use none never holds it.
 */
import type * as restate from "@restatedev/restate-sdk";
import type { ToolSpec } from "../llm/chat.js";
import type { Tasks } from "../tasks.js";
import type { ToolsConfig } from "../tool-runner.js";
import { TASKS_SERVICE, type ErrorData, type RetrySettings } from "../types.js";
import type { McpCallTarget, McpServerSpec, McpToolEntry } from "./spec.js";

export interface McpToolsRequest {
  job: string;
  servers: McpServerSpec[];
  retry: RetrySettings;
}

export interface McpToolsOutcome {
  tools: McpToolEntry[];
  error?: ErrorData;
}

export interface OfferedMcpTools {
  specs: ToolSpec[];
  tools: McpToolEntry[];
  /** Set when a server could not be listed: the job ends with it before its first turn. */
  error?: ErrorData;
}

/**
 * The job's MCP tools, from one Tasks.mcpTools call whose result the job's journal keeps: a replay,
 * or another endpoint, shows the model the same tools and maps its calls the same way. A job
 * without MCP servers makes no call.
 */
export async function offeredMcpTools(
  ctx: restate.Context,
  req: { job: string; tools: ToolsConfig; retry: RetrySettings },
): Promise<OfferedMcpTools> {
  const servers = req.tools.mcp ?? [];
  if (servers.length === 0) return { specs: [], tools: [] };
  const outcome = await ctx
    .serviceClient<Tasks>({ name: TASKS_SERVICE })
    .mcpTools({ job: req.job, servers, retry: req.retry });
  return {
    tools: outcome.tools,
    specs: outcome.tools.map((t) => ({
      type: "function",
      function: { name: t.name, description: t.description, parameters: t.inputSchema },
    })),
    ...(outcome.error ? { error: outcome.error } : {}),
  };
}

/** The part of a tool call's request that says which MCP tool it reaches, from the recorded list. */
export function mcpTarget(offered: OfferedMcpTools, name: string): { mcp?: McpCallTarget } {
  const entry = offered.tools.find((t) => t.name === name);
  return entry
    ? { mcp: { server: entry.server, tool: entry.tool, idempotent: entry.idempotent } }
    : {};
}
