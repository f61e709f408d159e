import {
  chmodSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  realpathSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { TerminalError } from "@restatedev/restate-sdk";
import { afterAll, describe, expect, it } from "vitest";
import {
  askedByModel,
  askedByTools,
  canonicalJson,
  DEFAULT_BASE_URL,
  emptyGrants,
  mergeGrants,
  refusal,
  type Grants,
} from "../../services/capabilities.js";
import { requireGranted } from "../../services/grant-check.js";
import type { CommandToolConfig } from "../../services/tools/index.js";
import { fileGrantSource, grantsPath, readGrantsFile, recordGrants } from "../../src/grants.js";
import { isLoopback, serveGrants, type ServeFlags } from "../../src/commands/serve.js";
import { commandDefinitions } from "../../src/commands/shared.js";
import { resolveConfig } from "../../src/config.js";

const dir = mkdtempSync(path.join(tmpdir(), "pagent-caps-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const echo: CommandToolConfig = {
  name: "echo",
  description: "echo a word",
  argv: ["/bin/echo", "{{word}}"],
  cwd: "/work/project",
};

function grants(extra: Partial<Grants>): Grants {
  return mergeGrants(emptyGrants(), extra);
}

describe("capability checks", () => {
  it("lets a base URL through only when granted, whatever its trailing slash or case of host", () => {
    const g = grants({ baseUrls: ["http://127.0.0.1:4000/v1"] });
    expect(refusal(g, askedByModel({ name: "m", baseUrl: "http://127.0.0.1:4000/v1/" }))).toBe(
      undefined,
    );
    expect(refusal(g, askedByModel({ name: "m", baseUrl: "HTTP://127.0.0.1:4000/v1" }))).toBe(
      undefined,
    );
    const foreign = refusal(g, askedByModel({ name: "m", baseUrl: "http://evil.example:9/v1" }));
    expect(foreign).toMatch(/^base URL http:\/\/evil\.example:9\/v1 is not granted/);
    expect(foreign).toContain("--allow-base-url");
    // A prefix of a granted URL is another URL.
    expect(refusal(g, askedByModel({ name: "m", baseUrl: "http://127.0.0.1:4000/" }))).toMatch(
      /not granted/,
    );
  });

  it("sends a job without a base URL to OpenAI's, which must be granted too; the offline model needs nothing", () => {
    expect(askedByModel({ name: "gpt" })).toEqual({ baseUrls: [DEFAULT_BASE_URL] });
    expect(refusal(emptyGrants(), askedByModel({ name: "gpt" }))).toMatch(/api\.openai\.com/);
    expect(askedByModel({ name: "local" })).toEqual({});
    expect(refusal(emptyGrants(), askedByModel({ name: "local" }))).toBe(undefined);
  });

  it("accepts a command tool only as the exact definition granted", () => {
    const g = grants({ commands: [echo] });
    const tools = (commands: CommandToolConfig[]) =>
      askedByTools({ enabled: ["echo"], commands, allowRoots: [], allowHosts: [] });
    // Key order does not matter.
    const reordered = {
      cwd: echo.cwd,
      argv: echo.argv,
      description: echo.description,
      name: echo.name,
    };
    expect(refusal(g, tools([reordered]))).toBe(undefined);
    const shell = { ...echo, argv: ["sh", "-c", "touch /tmp/pwned"] };
    expect(refusal(g, tools([shell]))).toMatch(/^command tool "echo" \(argv \["sh","-c"/);
    expect(refusal(g, tools([{ ...echo, cwd: "/tmp" }]))).toMatch(/not granted/);
    expect(refusal(g, tools([{ ...echo, timeoutMs: 1 }]))).toMatch(/not granted/);
    expect(refusal(emptyGrants(), tools([echo]))).toMatch(/not granted/);
  });

  it("accepts roots inside a granted root, judged by where symlinks lead", () => {
    const granted = path.join(dir, "granted");
    mkdirSync(path.join(granted, "sub"), { recursive: true });
    symlinkSync("/etc", path.join(granted, "link-out"));
    const g = grants({ roots: [granted] });
    const roots = (allowRoots: string[]) =>
      askedByTools({ enabled: ["read_file"], commands: [], allowRoots, allowHosts: [] });
    expect(refusal(g, roots([granted, path.join(granted, "sub")]))).toBe(undefined);
    expect(refusal(g, roots([`${granted}/sub/../..`]))).toMatch(/^directory \(--allow-root\)/);
    expect(refusal(g, roots(["/etc"]))).toMatch(/--allow-root DIR/);
    expect(refusal(g, roots([`${granted}2`]))).toMatch(/not granted/);
    expect(refusal(g, roots([path.join(granted, "link-out")]))).toMatch(/\/etc is not granted/);
  });

  it("accepts hosts the grants cover: a bare host covers its ports, a host:port only that port", () => {
    const g = grants({ hosts: ["api.example.com", "127.0.0.1:8080"] });
    const hosts = (allowHosts: string[]) =>
      askedByTools({ enabled: ["http_get"], commands: [], allowRoots: [], allowHosts });
    expect(refusal(g, hosts(["API.example.com", "api.example.com:443", "127.0.0.1:8080"]))).toBe(
      undefined,
    );
    expect(refusal(g, hosts(["127.0.0.1"]))).toMatch(/^host \(--allow-host\) 127\.0\.0\.1 is/);
    expect(refusal(g, hosts(["127.0.0.1:9090"]))).toMatch(/not granted/);
    expect(refusal(g, hosts(["evil.example"]))).toMatch(/--allow-host HOST/);
  });

  it("asks for roots, hosts and commands only when a tool that uses them is enabled", () => {
    const tools = {
      commands: [echo],
      allowRoots: ["/"],
      allowHosts: ["evil.example"],
    };
    expect(askedByTools({ ...tools, enabled: ["calculator"] })).toEqual({
      commands: [],
      roots: [],
      hosts: [],
    });
    expect(refusal(emptyGrants(), askedByTools({ ...tools, enabled: ["list_files"] }))).toMatch(
      /^directory/,
    );
    expect(refusal(emptyGrants(), askedByTools({ ...tools, enabled: ["http_get"] }))).toMatch(
      /^host/,
    );
    expect(refusal(emptyGrants(), askedByTools({ ...tools, enabled: ["echo"] }))).toMatch(
      /^command tool/,
    );
  });

  it("throws a TerminalError (no retry) naming what was refused", () => {
    expect(() => requireGranted(emptyGrants(), { hosts: ["x.example"] })).toThrow(TerminalError);
    expect(() =>
      requireGranted(grants({ hosts: ["x.example"] }), { hosts: ["x.example"] }),
    ).not.toThrow();
  });

  it("merges grants without duplicates, in order", () => {
    const merged = mergeGrants(grants({ baseUrls: ["http://a/v1"], commands: [echo] }), {
      baseUrls: ["http://a/v1/", "http://b/v1"],
      commands: [{ ...echo }],
      hosts: ["h"],
    });
    expect(merged.baseUrls).toEqual(["http://a/v1", "http://b/v1"]);
    expect(merged.commands).toHaveLength(1);
    expect(merged.hosts).toEqual(["h"]);
    expect(canonicalJson({ b: 1, a: [{ d: 1, c: 2 }] })).toBe('{"a":[{"c":2,"d":1}],"b":1}');
  });
});

describe("the grants file", () => {
  it("is written 0600, merged, and read back; the endpoint sees a change without a restart", async () => {
    const home = path.join(dir, "home");
    const source = fileGrantSource(grantsPath(home), () => undefined);
    expect(source()).toEqual(emptyGrants());
    await recordGrants(home, { baseUrls: ["http://x:1/v1"] });
    await recordGrants(home, { baseUrls: ["http://y:2/v1"], commands: [echo] });
    expect(statSync(grantsPath(home)).mode & 0o777).toBe(0o600);
    expect(source().baseUrls).toEqual(["http://x:1/v1", "http://y:2/v1"]);
    expect(source().commands).toEqual([echo]);
    expect(readFileSync(grantsPath(home), "utf8")).not.toMatch(/sk-/);
  });

  it("is ignored when others could have written it", () => {
    const file = path.join(dir, "loose.json");
    writeFileSync(file, JSON.stringify({ baseUrls: ["http://evil/v1"] }));
    chmodSync(file, 0o666);
    const problems: string[] = [];
    const source = fileGrantSource(file, (p) => problems.push(p));
    expect(source()).toEqual(emptyGrants());
    expect(problems[0]).toMatch(/writable by other users/);
    chmodSync(file, 0o600);
    expect(source().baseUrls).toEqual(["http://evil/v1"]);
    writeFileSync(file, "{not json");
    expect(readGrantsFile(file).problem).toMatch(/not a valid grants file/);
  });
});

describe("pagent serve --host", () => {
  it("knows loopback addresses", () => {
    for (const host of [
      "127.0.0.1",
      "127.1.2.3",
      "::1",
      "[::1]",
      "localhost",
      "::ffff:127.0.0.1",
    ]) {
      expect(isLoopback(host), host).toBe(true);
    }
    for (const host of ["0.0.0.0", "::", "192.168.1.2", "example.com", "10.0.0.1"]) {
      expect(isLoopback(host), host).toBe(false);
    }
  });
});

describe("what pagent serve grants", () => {
  const flags = (extra: Partial<ServeFlags> = {}): ServeFlags => ({
    host: "127.0.0.1",
    identityKey: [],
    allowBaseUrl: [],
    allowRoot: [],
    allowHost: [],
    ...extra,
  });
  const file = {
    baseUrl: "http://127.0.0.1:11434/v1",
    tools: { hello: { description: "hi", argv: ["/bin/echo", "hi"] } },
    allowRoots: ["."],
    allowHosts: ["example.com"],
  };

  it("its own base URL, its config's tools, roots and hosts, from its own directory", () => {
    const g = serveGrants(flags(), resolveConfig({}, {}, file), dir);
    expect(g.baseUrls).toEqual(["http://127.0.0.1:11434/v1"]);
    expect(g.commands).toEqual([
      { name: "hello", description: "hi", argv: ["/bin/echo", "hi"], cwd: dir },
    ]);
    expect(g.roots).toEqual([realpathSync(dir)]);
    expect(g.hosts).toEqual(["example.com"]);
    expect(serveGrants(flags(), resolveConfig({}, {}, {}), dir).baseUrls).toEqual([
      DEFAULT_BASE_URL,
    ]);
  });

  it("grants a tool with an absolute cwd to a job from any directory", () => {
    const shared = { tools: { t: { description: "d", argv: ["/bin/true"], cwd: "/srv" } } };
    const served = serveGrants(flags(), resolveConfig({}, {}, shared), dir);
    expect(served.commands[0]?.cwd).toBe("/srv");
    expect(refusal(served, { commands: commandDefinitions(shared, "/home/u/proj") })).toBe(
      undefined,
    );
    const relative = { tools: { t: { description: "d", argv: ["/bin/true"] } } };
    const servedHere = serveGrants(flags(), resolveConfig({}, {}, relative), dir);
    expect(refusal(servedHere, { commands: commandDefinitions(relative, "/home/u/proj") })).toMatch(
      /cwd \/home\/u\/proj\) is not granted/,
    );
  });

  it("--allow-base-url replaces the default; --grants leaves the config out", () => {
    const config = resolveConfig({}, {}, file);
    const only = serveGrants(flags({ allowBaseUrl: ["http://proxy:8/v1/"] }), config, dir);
    expect(only.baseUrls).toEqual(["http://proxy:8/v1"]);
    const embedded = serveGrants(
      flags({ grants: "/x/grants.json", allowHost: ["h"] }),
      config,
      dir,
    );
    expect(embedded).toEqual({ ...emptyGrants(), hosts: ["h"] });
    expect(() => serveGrants(flags({ allowBaseUrl: ["not a url"] }), config, dir)).toThrow(
      /--allow-base-url "not a url" is not a URL/,
    );
    expect(() => serveGrants(flags({ allowRoot: ["/no/such/dir"] }), config, dir)).toThrow(
      /no such directory/,
    );
  });
});
