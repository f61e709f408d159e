/**
 * The real Portkey AI gateway (`@portkey-ai/gateway`, a dev dependency) as a child process on a free
 * loopback port, for tests that put a gateway between pagent and the fake provider. It is told where
 * to send each request by headers (`x-portkey-provider`, `x-portkey-custom-host`), so it never needs
 * the internet.
 */
import { spawn } from "node:child_process";
import { createRequire } from "node:module";
import path from "node:path";
import { freePort } from "../../src/restate/server.js";

const require = createRequire(import.meta.url);
const ENTRY = path.join(
  path.dirname(require.resolve("@portkey-ai/gateway/package.json")),
  "build",
  "start-server.js",
);
/**
 * Preloaded into the gateway, which listens on every interface and has no host option: on a shared
 * machine a test server must be reachable from this machine only.
 */
const LOOPBACK = `data:text/javascript,${encodeURIComponent(`
  import net from "node:net";
  const listen = net.Server.prototype.listen;
  net.Server.prototype.listen = function (...args) {
    // @hono/node-server calls listen(port, undefined, callback).
    if (typeof args[0] === "number" && args[1] === undefined) args[1] = "127.0.0.1";
    else if (typeof args[0] === "number" && typeof args[1] === "function") args.splice(1, 0, "127.0.0.1");
    return listen.apply(this, args);
  };
`)}`;

export interface Gateway extends AsyncDisposable {
  /** `http://127.0.0.1:PORT/v1`: pagent's base URL. */
  baseUrl: string;
  /** Everything it printed, for a failing test's message. */
  output(): string;
  close(): Promise<void>;
}

export async function startGateway(): Promise<Gateway> {
  const port = await freePort();
  const child = spawn(
    process.execPath,
    ["--import", LOOPBACK, ENTRY, `--port=${port}`, "--headless"],
    // --headless: no web console, just the API.
    { stdio: ["ignore", "pipe", "pipe"] },
  );
  let output = "";
  child.stdout.on("data", (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on("data", (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const close = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill("SIGTERM");
      await exited;
    }
  };
  const baseUrl = `http://127.0.0.1:${port}/v1`;
  const deadline = Date.now() + 20_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`the gateway exited while starting:\n${output}`);
    // Any HTTP answer means it listens; its root path answers without a provider header.
    const up = await fetch(`http://127.0.0.1:${port}/`).then(
      () => true,
      () => false,
    );
    if (up) break;
    if (Date.now() > deadline) {
      await close();
      throw new Error(`the gateway did not listen on ${port} within 20 s:\n${output}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return { baseUrl, output: () => output, close, [Symbol.asyncDispose]: close };
}
