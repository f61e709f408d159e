/**
 * The endpoint's MCP side as Tasks uses it, loaded at the first job that uses an MCP server: the MCP
 * SDK (and its schemas) costs start-up time and ~25 MiB that an endpoint whose jobs use none would
 * hold for nothing. One pool of connections for every job of the endpoint, made on that first use.
 */
import type * as restate from "@restatedev/restate-sdk";
import type { Env } from "../llm/providers.js";
import type { ToolCallOutcome, ToolCallRequest } from "../tool-runner.js";
import type { McpToolsOutcome, McpToolsRequest } from "./agent.js";
import type * as Calls from "./calls.js";
import type { McpPool } from "./pool.js";
import type { McpCallTarget } from "./spec.js";

export function lazyMcp(env: Env) {
  let loaded: Promise<{ calls: typeof Calls; pool: McpPool }> | undefined;
  const load = () =>
    (loaded ??= Promise.all([import("./calls.js"), import("./pool.js")]).then(
      ([calls, { McpPool }]) => ({ calls, pool: new McpPool(env) }),
    ));
  return {
    /** Tasks.mcpTools. */
    async listTools(ctx: restate.Context, req: McpToolsRequest): Promise<McpToolsOutcome> {
      const { calls, pool } = await load();
      return calls.listMcpTools(ctx, pool, req);
    },
    /** Tasks.tool for an MCP tool. */
    async call(
      ctx: restate.Context,
      req: ToolCallRequest & { mcp: McpCallTarget },
    ): Promise<ToolCallOutcome> {
      const { calls, pool } = await load();
      return calls.runMcpCall(ctx, pool, req);
    },
  };
}
