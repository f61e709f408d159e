export { ToolError, type ToolContext, type ToolDefinition, type ToolErrorKind } from "./types.js";
export { defineTool } from "./define-tool.js";
export { builtinTools, DEFAULT_TOOL_NAMES, toolRegistry } from "./builtins.js";
export { calculatorTool, evaluate, formatRational } from "./calculator.js";
export { clockTool } from "./clock.js";
export {
  createListFilesTool,
  createReadFileTool,
  listFilesTool,
  readFileTool,
} from "./file-tools.js";
export { createHttpGetTool, httpGetTool, isHostAllowed } from "./http-get.js";
export { wordCountTool } from "./word-count.js";
export {
  commandTool,
  commandToolConfigSchema,
  type CommandToolArgs,
  type CommandToolConfig,
} from "./command.js";
