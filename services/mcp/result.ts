import type { CallToolResult } from "@modelcontextprotocol/sdk/types.js";

/** The most characters of one MCP result the model gets (and the journal keeps). */
export const MAX_RESULT_CHARS = 100_000;

/**
 * An MCP tool result as the text the model reads: text parts joined, `structuredContent` as JSON
 * when there is no text, binary parts as a short placeholder (the model cannot read base64), capped.
 */
export function resultText(result: CallToolResult): string {
  const parts = (result.content ?? []).map((part): string => {
    switch (part.type) {
      case "text":
        return part.text;
      case "image":
      case "audio":
        return `[${part.type} ${part.mimeType}, ${Math.round((part.data.length * 3) / 4)} bytes, not shown]`;
      case "resource":
        return "text" in part.resource
          ? part.resource.text
          : `[resource ${part.resource.uri}${part.resource.mimeType ? ` ${part.resource.mimeType}` : ""}, binary, not shown]`;
      case "resource_link":
        return `[resource link ${part.uri}]`;
      default:
        return `[${(part as { type: string }).type} part, not shown]`;
    }
  });
  const hasText = (result.content ?? []).some((p) => p.type === "text");
  let text = parts.join("\n");
  if (!hasText && result.structuredContent !== undefined) {
    text = [JSON.stringify(result.structuredContent), ...parts].filter(Boolean).join("\n");
  }
  if (text.length > MAX_RESULT_CHARS) {
    text = `${text.slice(0, MAX_RESULT_CHARS)}\n[cut: the result had ${text.length} characters, the first ${MAX_RESULT_CHARS} are shown]`;
  }
  return text;
}
