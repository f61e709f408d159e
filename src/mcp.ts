/**
 * The MCP servers a command uses, from `mcpServers` of the config file and of `--mcp-config FILE`
 * (a Claude Desktop / Claude Code / Cursor file, read as it is), narrowed by `--mcp a,b`. `pagent ask`
 * sends these definitions in the job and `pagent serve` grants them, so one function builds both.
 */
import { readFileSync } from "node:fs";
import path from "node:path";
import { z } from "zod";
import { mcpServerConfigSchema, type McpServerSpec } from "../services/mcp/spec.js";
import { serverPrefix } from "../services/mcp/names.js";
import { literalSecret } from "../services/llm/providers.js";
import type { ConfigFile } from "./config.js";
import { UsageError } from "./errors.js";

export const mcpServersSchema = z.record(z.string().min(1), mcpServerConfigSchema);

/** `mcpServers` of a `--mcp-config` file; other keys of the file (a whole Claude config) are ignored. */
export function loadMcpConfig(file: string, cwd: string): z.infer<typeof mcpServersSchema> {
  const where = path.resolve(cwd, file);
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(where, "utf8"));
  } catch (error) {
    throw new UsageError(`--mcp-config ${file}: ${(error as Error).message}`);
  }
  const parsed = z.object({ mcpServers: mcpServersSchema }).safeParse(json);
  if (!parsed.success) {
    throw new UsageError(
      `--mcp-config ${where} is not an MCP config ({"mcpServers": {...}}): ${z.prettifyError(parsed.error).replace(/\n/g, "; ")}`,
    );
  }
  return parsed.data.mcpServers;
}

/**
 * The selected servers as full definitions, a stdio server's `cwd` made absolute. Refused here,
 * before anything is submitted: an unknown `--mcp` name, a literal secret (it would be recorded in
 * the job), and two servers (or a command tool) whose tools the model could not tell apart.
 */
export function mcpDefinitions(
  file: ConfigFile,
  selection: string | undefined,
  cwd: string,
  otherTools: string[] = [],
): McpServerSpec[] {
  const all = file.mcpServers ?? {};
  const names = selection
    ? selection
        .split(",")
        .map((s) => s.trim())
        .filter(Boolean)
    : Object.keys(all);
  const unknown = names.filter((name) => !Object.hasOwn(all, name));
  if (unknown.length > 0) {
    throw new UsageError(
      `--mcp ${unknown.join(", ")}: no such MCP server; configured: ${Object.keys(all).join(", ") || "none (add mcpServers to pagent.config.json or pass --mcp-config FILE)"}`,
    );
  }
  const specs = names.map((name): McpServerSpec => {
    const def = all[name]!;
    for (const [key, value] of [
      ...Object.entries(def.env ?? {}),
      ...Object.entries(def.headers ?? {}),
    ]) {
      const secret = literalSecret(key, value);
      if (secret)
        throw new UsageError(`MCP server "${name}": ${secret.replace(/^header/, "setting")}`);
    }
    return {
      name,
      ...def,
      ...(def.command !== undefined ? { cwd: path.resolve(cwd, def.cwd ?? ".") } : {}),
    };
  });
  const prefixes = new Map<string, string>();
  for (const { name } of specs) {
    const prefix = serverPrefix(name);
    const clash = prefixes.get(prefix) ?? otherTools.find((tool) => tool.startsWith(prefix));
    if (clash !== undefined) {
      throw new UsageError(
        `MCP server "${name}" and "${clash}" would give the model tools of the same names (${prefix}...); rename one`,
      );
    }
    prefixes.set(prefix, name);
  }
  return specs;
}

/** The environment variables the servers' `env` and `headers` name: the endpoint must be given them. */
export function mcpTemplates(file: ConfigFile): string[] {
  return Object.values(file.mcpServers ?? {}).flatMap((def) => [
    ...Object.values(def.env ?? {}),
    ...Object.values(def.headers ?? {}),
  ]);
}
