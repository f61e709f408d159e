#!/usr/bin/env node
/* global process, setTimeout */
/**
 * A tiny MCP stdio server for the crash tests: each call of its tools appends the tool's name to
 * $COUNT_FILE when it starts, then waits `ms`, so a test can count calls at the server. `append`
 * has no hints (not safe to repeat); `peek` is marked read-only; `crash_once` kills the server once.
 */
import { appendFileSync, existsSync, readFileSync } from "node:fs";
import { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import { StdioServerTransport } from "@modelcontextprotocol/sdk/server/stdio.js";
import { z } from "zod";

const countFile = process.env.COUNT_FILE;
const server = new McpServer({ name: "counter", version: "1.0.0" });
for (const [name, annotations] of [
  ["append", {}],
  ["peek", { readOnlyHint: true }],
]) {
  server.registerTool(
    name,
    { description: `${name}: waits ms milliseconds`, inputSchema: { ms: z.number() }, annotations },
    async ({ ms }) => {
      appendFileSync(countFile, `${name}\n`);
      await new Promise((resolve) => setTimeout(resolve, ms));
      return { content: [{ type: "text", text: `${name} done` }] };
    },
  );
}
// Read-only, and the server process dies during its first call ever (by $COUNT_FILE): a client must
// start the server again and repeat the call.
server.registerTool(
  "crash_once",
  { description: "dies the first time", inputSchema: {}, annotations: { readOnlyHint: true } },
  async () => {
    const first = !existsSync(countFile) || !readFileSync(countFile, "utf8").includes("crash_once");
    appendFileSync(countFile, "crash_once\n");
    if (first) process.exit(1);
    return { content: [{ type: "text", text: "survived" }] };
  },
);
await server.connect(new StdioServerTransport());
