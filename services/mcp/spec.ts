/**
 * MCP servers as a job records them: the Claude Desktop / Claude Code / Cursor `mcpServers` entries,
 * as written. `${VAR}` in `env` and `headers` stays unexpanded here: only the endpoint expands it,
 * when it starts the server (see pool.ts), so no secret reaches a job, Restate's journal or a log.
 */
import { z } from "zod";

/** One entry of `mcpServers`: stdio `{command, args, env, cwd}` or remote `{type: "http", url, headers}`. */
export const mcpServerConfigSchema = z
  .object({
    type: z.enum(["stdio", "http", "streamable-http"]).optional(),
    command: z.string().min(1).optional(),
    args: z.array(z.string()).optional(),
    env: z.record(z.string(), z.string()).optional(),
    cwd: z.string().optional(),
    url: z.string().url().optional(),
    headers: z.record(z.string(), z.string()).optional(),
    /** pagent's own: the longest one call may take (also bounded by --task-timeout). */
    timeoutMs: z.number().int().positive().optional(),
    /** pagent's own: how long the server may take to start and answer `initialize` (default 60 s). */
    startupTimeoutMs: z.number().int().positive().optional(),
    /** pagent's own: tools (or `true`: all) that may run again after a crash, whatever the server says. */
    idempotent: z.union([z.boolean(), z.array(z.string())]).optional(),
  })
  // Other clients' own keys (`disabled`, `autoApprove`, `alwaysAllow`, ...) are kept out, not refused:
  // a `.mcp.json` written for them must work unchanged.
  .strip()
  .refine((s) => (s.url !== undefined) !== (s.command !== undefined), {
    message:
      'give either "command" (a stdio server) or "url" (a remote server with "type": "http")',
  });

export type McpServerConfig = z.infer<typeof mcpServerConfigSchema>;

/** A configured server with its name: a capability of the endpoint (services/capabilities.ts). */
export type McpServerSpec = McpServerConfig & { name: string };

/** Default time a server gets to start and answer `initialize`. */
export const DEFAULT_STARTUP_TIMEOUT_MS = 60_000;

export function isRemote(spec: McpServerSpec): boolean {
  return spec.url !== undefined;
}

/** One MCP tool as offered to a job: the name the model sees and where it leads, recorded in the job. */
export interface McpToolEntry {
  /** What the model sees: `<server>__<tool>`, cleaned (see names.ts). */
  name: string;
  server: string;
  /** The server's own name of the tool, as it gave it. */
  tool: string;
  description: string;
  inputSchema: Record<string, unknown>;
  /** May run again after a crash: the server's readOnlyHint/idempotentHint or the config's `idempotent`. */
  idempotent: boolean;
}

/** Which server and tool a call of a Tasks.tool invocation goes to. */
export interface McpCallTarget {
  server: string;
  tool: string;
  idempotent: boolean;
}
