/**
 * The names the model sees for MCP tools. Providers accept only `^[A-Za-z0-9_-]{1,64}$`; servers
 * name tools with dots, slashes and any length, so names are cleaned and, where cleaning changed
 * something or the name is too long, made unique with a short hash of the original. The mapping back
 * is recorded in the job (McpToolEntry), never recovered by splitting a name.
 */
import { createHash } from "node:crypto";

export const TOOL_NAME = /^[A-Za-z0-9_-]{1,64}$/;
const MAX = 64;

const hash = (text: string) => createHash("sha256").update(text).digest("hex").slice(0, 6);

/** `text` in the provider's alphabet: other characters become `_`. */
function clean(text: string): string {
  return text.replace(/[^A-Za-z0-9_-]/g, "_");
}

/** `<server>__<tool>`, cleaned; a hash of the original pair is added where it was changed or cut. */
export function modelToolName(server: string, tool: string): string {
  const plain = `${clean(server)}__${clean(tool)}`;
  if (plain === `${server}__${tool}` && plain.length <= MAX) return plain;
  const suffix = `_${hash(`${server}\0${tool}`)}`;
  return `${plain.slice(0, MAX - suffix.length)}${suffix}`;
}

/** A server name as the prefix of its tools' names; two servers with one prefix cannot both be used. */
export function serverPrefix(server: string): string {
  return `${clean(server)}__`;
}
