import http from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  createHttpGetTool,
  httpGetTool,
  isHostAllowed,
  ToolError,
  type ToolContext,
} from "../../services/tools/index.js";

let server: http.Server;
let base: string;
let port: number;
let ctx: ToolContext;
let hits = 0;

beforeAll(async () => {
  server = http.createServer((req, res) => {
    hits++;
    const url = new URL(req.url ?? "/", "http://x");
    switch (url.pathname) {
      case "/hello":
        res.writeHead(200, { "content-type": "text/plain; charset=utf-8" });
        res.end("hello, wörld");
        return;
      case "/missing":
        res.writeHead(404, { "content-type": "text/plain" });
        res.end("nothing here");
        return;
      case "/unavailable":
        res.writeHead(503);
        res.end("try later");
        return;
      case "/busy":
        res.writeHead(429);
        res.end();
        return;
      case "/big": {
        res.writeHead(200, { "content-type": "text/plain" });
        const chunk = "y".repeat(64 * 1024);
        // 2 MiB, streamed; the client should stop reading after 1 MiB.
        for (let i = 0; i < 32; i++) res.write(chunk);
        res.end();
        return;
      }
      case "/binary":
        res.writeHead(200, { "content-type": "image/png" });
        res.end(Buffer.from([0x89, 0x50, 0x00, 0x47]));
        return;
      case "/redirect":
        res.writeHead(302, { location: "/hello" });
        res.end();
        return;
      case "/redirect-away":
        res.writeHead(301, { location: "http://forbidden.example/steal" });
        res.end();
        return;
      case "/redirect-localhost":
        res.writeHead(307, { location: `http://localhost:${port}/hello` });
        res.end();
        return;
      case "/loop":
        res.writeHead(302, { location: "/loop" });
        res.end();
        return;
      case "/hang":
        return; // never answers
      default:
        res.writeHead(500);
        res.end();
    }
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  port = (server.address() as AddressInfo).port;
  base = `http://127.0.0.1:${port}`;
  ctx = {
    allowRoots: [],
    allowHosts: ["127.0.0.1"],
    signal: new AbortController().signal,
    cwd: process.cwd(),
  };
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});

function get(url: string, context: ToolContext = ctx): Promise<string> {
  return httpGetTool.run(httpGetTool.parse({ url }), context);
}

describe("http_get", () => {
  it("returns the status line and the body", async () => {
    expect(await get(`${base}/hello`)).toBe("HTTP 200 OK\nhello, wörld");
  });

  it("returns 4xx as data, not as an error", async () => {
    expect(await get(`${base}/missing`)).toBe("HTTP 404 Not Found\nnothing here");
  });

  it("treats 5xx and 429 as transient", async () => {
    await expect(get(`${base}/unavailable`)).rejects.toMatchObject({
      kind: "transient",
      retryable: true,
      message: expect.stringMatching(/503.*try later/) as unknown,
    });
    await expect(get(`${base}/busy`)).rejects.toMatchObject({ kind: "transient" });
  });

  it("refuses hosts that are not allowed, without connecting", async () => {
    const before = hits;
    const err: unknown = await get(`http://localhost:${port}/hello`).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ToolError);
    expect(err).toMatchObject({ kind: "refused", retryable: false });
    expect((err as Error).message).toMatch(/--allow-host localhost/);
    await expect(get(`${base}/hello`, { ...ctx, allowHosts: [] })).rejects.toMatchObject({
      kind: "refused",
    });
    expect(hits).toBe(before);
  });

  it("refuses non-http schemes and rejects malformed URLs", async () => {
    await expect(get("file:///etc/passwd")).rejects.toMatchObject({ kind: "refused" });
    await expect(get("not a url")).rejects.toMatchObject({ kind: "invalid_args" });
  });

  it("matches host:port entries on the port", async () => {
    expect(await get(`${base}/hello`, { ...ctx, allowHosts: [`127.0.0.1:${port}`] })).toMatch(
      /^HTTP 200/,
    );
    await expect(
      get(`${base}/hello`, { ...ctx, allowHosts: [`127.0.0.1:${port + 1}`] }),
    ).rejects.toMatchObject({ kind: "refused" });
  });

  it("follows redirects on allowed hosts", async () => {
    expect(await get(`${base}/redirect`)).toBe("HTTP 200 OK\nhello, wörld");
    const both = { ...ctx, allowHosts: ["127.0.0.1", "LOCALHOST"] };
    expect(await get(`${base}/redirect-localhost`, both)).toBe("HTTP 200 OK\nhello, wörld");
  });

  it("refuses a redirect to a host that is not allowed", async () => {
    await expect(get(`${base}/redirect-away`)).rejects.toMatchObject({
      kind: "refused",
      message: expect.stringMatching(/redirect .*forbidden\.example/) as unknown,
    });
    await expect(get(`${base}/redirect-localhost`)).rejects.toMatchObject({ kind: "refused" });
  });

  it("stops after 5 redirects", async () => {
    const before = hits;
    await expect(get(`${base}/loop`)).rejects.toMatchObject({
      kind: "failed",
      message: expect.stringMatching(/more than 5 redirects/) as unknown,
    });
    expect(hits - before).toBe(6);
  });

  it("caps the body at 1 MiB and says so", async () => {
    const out = await get(`${base}/big`);
    expect(out.startsWith("HTTP 200 OK\nyyy")).toBe(true);
    expect(out).toMatch(/\n\[truncated: showing the first 1048576 bytes\]$/);
    expect(out.length).toBeLessThan(1024 * 1024 + 100);
  });

  it("omits binary bodies", async () => {
    expect(await get(`${base}/binary`)).toBe("HTTP 200 OK\n[binary body (image/png) omitted]");
  });

  it("times out", async () => {
    const tool = createHttpGetTool({ timeoutMs: 200 });
    const started = Date.now();
    await expect(tool.run({ url: `${base}/hang` }, ctx)).rejects.toMatchObject({
      kind: "timeout",
      retryable: false,
    });
    expect(Date.now() - started).toBeLessThan(5_000);
  });

  it("stops when the caller aborts", async () => {
    const controller = new AbortController();
    const pending = get(`${base}/hang`, { ...ctx, signal: controller.signal });
    setTimeout(() => controller.abort(), 50);
    await expect(pending).rejects.toMatchObject({ kind: "failed", message: "http_get aborted" });
  });

  it("reports connection failures as transient", async () => {
    const closed = http.createServer();
    await new Promise<void>((resolve) => closed.listen(0, "127.0.0.1", resolve));
    const closedPort = (closed.address() as AddressInfo).port;
    await new Promise((resolve) => closed.close(resolve));
    await expect(get(`http://127.0.0.1:${closedPort}/`)).rejects.toMatchObject({
      kind: "transient",
      retryable: true,
      message: expect.stringMatching(/ECONNREFUSED/) as unknown,
    });
  });
});

describe("isHostAllowed", () => {
  it.each([
    ["https://example.com/x", ["example.com"], true],
    ["https://Example.COM./x", ["example.com"], true],
    ["https://example.com/x", ["example.com:443"], true],
    ["https://example.com:8443/x", ["example.com:443"], false],
    ["http://example.com:8080/x", ["example.com"], true],
    ["https://sub.example.com/x", ["example.com"], false],
    ["https://example.com.evil.net/x", ["example.com"], false],
    ["http://[::1]:8080/", ["::1"], true],
    ["http://[::1]:8080/", ["[::1]:8080"], true],
    ["http://[::1]:8080/", ["[::1]:80"], false],
  ])("%s with %j → %s", (url, allow, expected) => {
    expect(isHostAllowed(new URL(url), allow)).toBe(expected);
  });
});
