import { calculatorTool } from "./calculator.js";
import { clockTool } from "./clock.js";
import { listFilesTool, readFileTool } from "./file-tools.js";
import { httpGetTool } from "./http-get.js";
import type { ToolDefinition } from "./types.js";
import { wordCountTool } from "./word-count.js";

/** The built-in tools of `pagent ask`, all read-only, with default limits. */
export const builtinTools: readonly ToolDefinition[] = [
  calculatorTool,
  clockTool,
  readFileTool,
  listFilesTool,
  httpGetTool,
  wordCountTool,
];

/** Names of every built-in tool; the CLI narrows this with --tools. */
export const DEFAULT_TOOL_NAMES: readonly string[] = builtinTools.map((tool) => tool.name);

/** Name → tool lookup; throws on duplicate names so a user tool cannot shadow a built-in. */
export function toolRegistry(tools: readonly ToolDefinition[]): Map<string, ToolDefinition> {
  const registry = new Map<string, ToolDefinition>();
  for (const tool of tools) {
    if (registry.has(tool.name)) throw new Error(`duplicate tool name: ${tool.name}`);
    registry.set(tool.name, tool);
  }
  return registry;
}
