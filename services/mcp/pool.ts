/**
 * The endpoint's live MCP connections, keyed by the resolved launch settings (command, arguments,
 * expanded environment and headers): a server starts on first use, one connection serves every
 * parallel call, it is closed after an idle period and started again when it died. Lives in the
 * endpoint process only; nothing here is journaled.
 */
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import {
  StreamableHTTPClientTransport,
  StreamableHTTPError,
} from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { UnauthorizedError } from "@modelcontextprotocol/sdk/client/auth.js";
import { DEFAULT_INHERITED_ENV_VARS } from "@modelcontextprotocol/sdk/client/stdio.js";
import type { Transport } from "@modelcontextprotocol/sdk/shared/transport.js";
import type { CallToolResult, Tool } from "@modelcontextprotocol/sdk/types.js";
import { canonicalJson } from "../capabilities.js";
import { expand, type Env } from "../llm/providers.js";
import { DEFAULT_STARTUP_TIMEOUT_MS, type McpServerSpec } from "./spec.js";
import { GroupStdioTransport, killAllServers, type StdioLaunch } from "./transport.js";

/** How long an unused connection stays open. */
export const DEFAULT_IDLE_MS = 5 * 60_000;

/** Why an MCP server cannot be used; `fatal` when retrying cannot help (missing command, 401/403). */
export class McpServerError extends Error {
  override readonly name = "McpServerError";
  constructor(
    message: string,
    readonly fatal: boolean,
  ) {
    super(message);
  }
}

interface Connection {
  client: Client;
  transport: Transport;
  busy: number;
  idle?: NodeJS.Timeout;
  closed: boolean;
}

type Launch = { stdio: StdioLaunch } | { http: { url: string; headers: Record<string, string> } };

/** The settings a server is started with: its `${VAR}`s expanded from the endpoint's environment. */
function launchOf(spec: McpServerSpec, env: Env): Launch {
  const expanded = (values: Record<string, string> | undefined) =>
    Object.fromEntries(
      Object.entries(values ?? {}).map(([name, template]) => {
        try {
          return [name, expand(template, env)];
        } catch (error) {
          throw new McpServerError(`MCP server "${spec.name}": ${(error as Error).message}`, true);
        }
      }),
    );
  if (spec.url !== undefined) return { http: { url: spec.url, headers: expanded(spec.headers) } };
  // Only what its config names plus the few variables any program expects, never the endpoint's
  // whole environment (which holds the model key).
  const minimal = Object.fromEntries(
    DEFAULT_INHERITED_ENV_VARS.flatMap((name) => (env[name] ? [[name, env[name]]] : [])),
  );
  return {
    stdio: {
      command: spec.command!,
      args: spec.args ?? [],
      env: { ...minimal, ...expanded(spec.env) },
      ...(spec.cwd !== undefined ? { cwd: spec.cwd } : {}),
    },
  };
}

/** A start-up failure as one line naming the server and what to do. */
function startFailure(spec: McpServerSpec, error: unknown, stderr: string): McpServerError {
  if (error instanceof McpServerError) return error;
  const code = (error as NodeJS.ErrnoException).code;
  if (code === "ENOENT" || code === "EACCES") {
    return new McpServerError(
      `MCP server "${spec.name}": cannot run command "${spec.command}" (${code}); install it or fix "command" of mcpServers.${spec.name}`,
      true,
    );
  }
  const status =
    error instanceof StreamableHTTPError
      ? error.code
      : error instanceof UnauthorizedError
        ? 401
        : undefined;
  if (status === 401 || status === 403) {
    return new McpServerError(
      `MCP server "${spec.name}" at ${spec.url} refused pagent (HTTP ${status}); set the credential in its "headers" (e.g. "Authorization": "Bearer \${TOKEN}", with TOKEN set where the endpoint runs)`,
      true,
    );
  }
  const tail = stderr.trim().split("\n").slice(-3).join(" | ");
  return new McpServerError(
    `MCP server "${spec.name}" failed to start: ${(error as Error).message}${tail ? ` (stderr: ${tail})` : ""}`,
    false,
  );
}

export class McpPool {
  private readonly connections = new Map<string, Promise<Connection>>();

  constructor(
    private readonly env: Env,
    private readonly idleMs = DEFAULT_IDLE_MS,
  ) {}

  /** A live connection to `spec`, started if there is none (or the last one died). */
  private connect(spec: McpServerSpec): { key: string; connection: Promise<Connection> } {
    const launch = launchOf(spec, this.env);
    const key = canonicalJson(launch);
    let connection = this.connections.get(key);
    if (!connection) {
      connection = this.start(spec, launch, key);
      this.connections.set(key, connection);
      // A failed start is not kept: the next call tries again.
      const started = connection;
      started.catch(() => {
        if (this.connections.get(key) === started) this.connections.delete(key);
      });
    }
    return { key, connection };
  }

  // Not async: `promise` itself is what the map holds, so a closed connection can find and drop it.
  private start(spec: McpServerSpec, launch: Launch, key: string): Promise<Connection> {
    const transport =
      "stdio" in launch
        ? new GroupStdioTransport(launch.stdio)
        : new StreamableHTTPClientTransport(new URL(launch.http.url), {
            requestInit: { headers: launch.http.headers },
          });
    const client = new Client({ name: "pagent", version: "1" });
    const connection: Connection = { client, transport, busy: 0, closed: false };
    client.onclose = () => {
      connection.closed = true;
      if (this.connections.get(key) === promise) this.connections.delete(key);
    };
    const timeoutMs = spec.startupTimeoutMs ?? DEFAULT_STARTUP_TIMEOUT_MS;
    const promise = (async () => {
      try {
        await client.connect(transport, { timeout: timeoutMs });
      } catch (error) {
        await transport.close().catch(() => undefined);
        const stderr = transport instanceof GroupStdioTransport ? transport.stderrTail : "";
        throw startFailure(spec, error, stderr);
      }
      return connection;
    })();
    return promise;
  }

  private async use<T>(spec: McpServerSpec, work: (c: Connection) => Promise<T>): Promise<T> {
    const { key, connection: pending } = this.connect(spec);
    const connection = await pending;
    connection.busy++;
    clearTimeout(connection.idle);
    try {
      return await work(connection);
    } finally {
      connection.busy--;
      if (connection.busy === 0 && !connection.closed) {
        connection.idle = setTimeout(() => {
          if (this.connections.get(key) === pending) this.connections.delete(key);
          void connection.client.close();
        }, this.idleMs);
        connection.idle.unref();
      }
    }
  }

  /** Every tool of the server, all pages. */
  async listTools(spec: McpServerSpec): Promise<Tool[]> {
    return this.use(spec, async ({ client }) => {
      const tools: Tool[] = [];
      let cursor: string | undefined;
      do {
        const page = await client.listTools(cursor ? { cursor } : {});
        tools.push(...page.tools);
        cursor = page.nextCursor;
      } while (cursor);
      return tools;
    });
  }

  async callTool(
    spec: McpServerSpec,
    tool: string,
    args: Record<string, unknown>,
    options: { timeoutMs: number; signal: AbortSignal },
  ): Promise<CallToolResult> {
    return this.use(
      spec,
      async ({ client }) =>
        (await client.callTool({ name: tool, arguments: args }, undefined, {
          timeout: options.timeoutMs,
          signal: options.signal,
        })) as CallToolResult,
    );
  }

  /** Closes every connection and kills every server this pool started. */
  async close(): Promise<void> {
    const all = [...this.connections.values()];
    this.connections.clear();
    await Promise.allSettled(all.map(async (c) => (await c).client.close()));
    killAllServers();
  }
}
