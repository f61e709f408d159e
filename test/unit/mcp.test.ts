import { describe, expect, it } from "vitest";
import { planToolCalls } from "../../services/llm/local/agent.js";
import { modelToolName, TOOL_NAME } from "../../services/mcp/names.js";
import { MAX_RESULT_CHARS, resultText } from "../../services/mcp/result.js";
import { refusal, emptyGrants, mergeGrants } from "../../services/capabilities.js";
import { mcpDefinitions } from "../../src/mcp.js";
import { resolveConfig, withMcpConfig } from "../../src/config.js";

describe("MCP tool names", () => {
  it("keeps clean names and cleans others, unique by a hash of the original", () => {
    expect(modelToolName("github", "create_issue")).toBe("github__create_issue");
    const dotted = modelToolName("my.server", "files/read");
    expect(dotted).toMatch(/^my_server__files_read_[0-9a-f]{6}$/);
    expect(modelToolName("my_server", "files_read")).not.toBe(dotted);
    const long = modelToolName("s".repeat(40), "t".repeat(40));
    expect(long).toMatch(TOOL_NAME);
    expect(long).not.toBe(modelToolName("s".repeat(40), `${"t".repeat(39)}u`));
  });
});

describe("mcpServers config", () => {
  const file = {
    mcpServers: {
      gh: { command: "gh-mcp", env: { GITHUB_TOKEN: "${GITHUB_TOKEN}" } },
      remote: {
        type: "http" as const,
        url: "https://mcp.example.com/mcp",
        headers: { Authorization: "Bearer ${TOKEN}" },
      },
    },
  };

  it("selects with --mcp, resolves a stdio server's cwd, keeps ${VAR} as written", () => {
    const specs = mcpDefinitions(file, "gh", "/work");
    expect(specs).toEqual([
      { name: "gh", command: "gh-mcp", env: { GITHUB_TOKEN: "${GITHUB_TOKEN}" }, cwd: "/work" },
    ]);
    expect(mcpDefinitions(file, undefined, "/work").map((s) => s.name)).toEqual(["gh", "remote"]);
  });

  it("refuses before submission: unknown names, literal secrets, names the model could not tell apart", () => {
    expect(() => mcpDefinitions(file, "nope", "/w")).toThrow(
      /--mcp nope: no such MCP server; configured: gh, remote/,
    );
    expect(() =>
      mcpDefinitions(
        { mcpServers: { gh: { command: "x", env: { GITHUB_TOKEN: "ghp_literal" } } } },
        undefined,
        "/w",
      ),
    ).toThrow(/MCP server "gh": setting "GITHUB_TOKEN" holds a credential/);
    expect(() =>
      mcpDefinitions(
        { mcpServers: { "a.b": { command: "x" }, a_b: { command: "y" } } },
        undefined,
        "/w",
      ),
    ).toThrow(/MCP server "a_b" and "a.b" would give the model tools of the same names/);
    expect(() =>
      mcpDefinitions({ mcpServers: { gh: { command: "x" } } }, undefined, "/w", ["gh__mine"]),
    ).toThrow(/"gh" and "gh__mine"/);
  });

  it("gives the embedded endpoint the variables the servers name, and only a granted definition passes", () => {
    const config = resolveConfig({}, { GITHUB_TOKEN: "t1", TOKEN: "t2", OTHER: "no" }, file);
    expect(config.secretEnv).toEqual({ GITHUB_TOKEN: "t1", TOKEN: "t2" });
    const [gh] = mcpDefinitions(file, "gh", "/w");
    const grants = mergeGrants(emptyGrants(), { mcpServers: [gh!] });
    expect(refusal(grants, { mcpServers: [gh!] })).toBeUndefined();
    expect(refusal(grants, { mcpServers: [{ ...gh!, command: "/bin/sh" }] })).toMatch(
      /^MCP server "gh" .* is not granted to this pagent endpoint/,
    );
  });

  it("--mcp-config reads a Claude-style file as it is", () => {
    expect(() => withMcpConfig({}, "/nonexistent/.mcp.json", "/")).toThrow(/--mcp-config/);
  });
});

describe("MCP results as the model reads them", () => {
  it("joins text, shows structured content when there is no text, replaces binary parts, caps the size", () => {
    expect(
      resultText({
        content: [
          { type: "text", text: "a" },
          { type: "text", text: "b" },
        ],
      }),
    ).toBe("a\nb");
    expect(resultText({ content: [], structuredContent: { n: 1 } })).toBe('{"n":1}');
    expect(resultText({ content: [{ type: "image", data: "AAAA", mimeType: "image/png" }] })).toBe(
      "[image image/png, 3 bytes, not shown]",
    );
    const big = resultText({
      content: [{ type: "text", text: "x".repeat(MAX_RESULT_CHARS + 10) }],
    });
    expect(big.length).toBeLessThan(MAX_RESULT_CHARS + 200);
    expect(big).toMatch(/\[cut: the result had 100010 characters/);
  });
});

describe("the local model and MCP tools", () => {
  it("calls a tool the prompt names as server__tool {json}", () => {
    const plan = planToolCalls(
      'please everything__get-sum {"a": 2, "b": {"c": 1}} now, and fs__x {}',
      [{ name: "everything__get-sum" }],
    );
    expect(plan.calls).toEqual([{ name: "everything__get-sum", args: { a: 2, b: { c: 1 } } }]);
    expect(plan.unavailable).toEqual(["the prompt names fs__x, but no such tool is bound"]);
  });
});
