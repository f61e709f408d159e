import * as clients from "@restatedev/restate-sdk-clients";
import type { Command } from "commander";
import type { Tasks } from "../../services/index.js";
import type { McpToolsOutcome } from "../../services/mcp/agent.js";
import { builtinTools, commandTool } from "../../services/tools/index.js";
import type { GlobalFlags } from "../config.js";
import { commandContext, type App } from "../context.js";
import { EXIT } from "../errors.js";
import { mcpDefinitions } from "../mcp.js";
import { commandDefinitions, retrySettings } from "./shared.js";

/** One tool `ask` can use, as `pagent tools` lists it. */
export interface ToolListing {
  name: string;
  source: "built-in" | "command" | `mcp:${string}`;
  description: string;
  inputSchema: Record<string, unknown>;
}

export interface ToolsReport {
  tools: ToolListing[];
  /** MCP servers whose tools could not be listed, with why. */
  failed: { server: string; message: string }[];
}

function render(report: ToolsReport): string {
  const width = (key: "name" | "source") => Math.max(0, ...report.tools.map((t) => t[key].length));
  return report.tools
    .map(
      (t) =>
        `${t.name.padEnd(width("name"))}  ${t.source.padEnd(width("source"))}  ${t.description.split("\n")[0]}\n`,
    )
    .join("");
}

export function registerTools(program: Command, app: App): void {
  program
    .command("tools")
    .description(
      "list every tool ask can use: built-in, config command tools, MCP servers' tools (starts the servers in the endpoint)",
    )
    .action(async (_flags: unknown, command: Command) => {
      const globals = command.optsWithGlobals<GlobalFlags>();
      const ctx = commandContext(app, globals);
      const commands = commandDefinitions(ctx.config.file, app.cwd);
      const own = [...builtinTools.map((t) => t.name), ...commands.map((c) => c.name)];
      const servers = mcpDefinitions(ctx.config.file, globals.mcp, app.cwd, own);
      const report: ToolsReport = {
        tools: [
          ...builtinTools.map((t) => ({ tool: t, source: "built-in" as const })),
          ...commands.map((c) => ({ tool: commandTool(c), source: "command" as const })),
        ].map(({ tool, source }) => ({
          name: tool.name,
          source,
          description: tool.description,
          inputSchema: tool.jsonSchema,
        })),
        failed: [],
      };
      if (servers.length > 0) {
        // The endpoint starts the servers, as it will for `ask`: one listing per server, so one
        // that fails to start does not hide the others.
        const runtime = await ctx.openRuntime({ mcpServers: servers });
        const ingress = clients.connect({ url: runtime.ingress.url, fetch: runtime.ingress.fetch });
        const tasks = ingress.serviceClient<Tasks>({ name: "Tasks" });
        const outcomes: McpToolsOutcome[] = await Promise.all(
          servers.map((server) =>
            tasks.mcpTools({
              job: "pagent-tools",
              servers: [server],
              retry: retrySettings(ctx.config),
            }),
          ),
        );
        for (const [i, outcome] of outcomes.entries()) {
          const server = servers[i]!.name;
          if (outcome.error) report.failed.push({ server, message: outcome.error.message });
          for (const t of outcome.tools) {
            report.tools.push({
              name: t.name,
              source: `mcp:${server}`,
              description: t.description,
              inputSchema: t.inputSchema,
            });
          }
        }
      }
      // --ndjson: a tool a line; --quiet: the names.
      ctx.reporter.show({
        json: report,
        ndjson: report.tools,
        quiet: report.tools.map((t) => t.name),
        human: render(report),
      });
      for (const { message } of report.failed) app.stderr.write(`pagent: ${message}\n`);
      app.finish(report.failed.length > 0 ? EXIT.partial : EXIT.ok);
    });
}
