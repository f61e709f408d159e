/**
 * The Restate UI of a server that listens only on unix sockets: a loopback HTTP proxy to its admin
 * API (which serves the UI at /ui/ and the API the UI calls). Another local user can connect to a
 * loopback port, so the proxy admits only a browser that opened the one-time link it printed: the
 * token in that link is exchanged once for an HttpOnly session cookie, and every request without
 * that cookie gets 403.
 */
import { randomBytes, timingSafeEqual } from "node:crypto";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { UnavailableError } from "../errors.js";

const COOKIE = "pagent_ui";
const LOGIN_PATH = "/pagent-login";

export interface UiProxy {
  /** The one-time link: opens the UI at `startPath` and is spent by its first use. */
  url: string;
  port: number;
  close(): Promise<void>;
}

function sameSecret(given: string | undefined, secret: string): boolean {
  if (!given) return false;
  const a = Buffer.from(given);
  const b = Buffer.from(secret);
  return a.length === b.length && timingSafeEqual(a, b);
}

function cookieValue(header: string | undefined, name: string): string | undefined {
  for (const part of (header ?? "").split(";")) {
    const [key, ...value] = part.trim().split("=");
    if (key === name) return value.join("=");
  }
  return undefined;
}

function forbid(res: http.ServerResponse, why: string): void {
  res.writeHead(403, { "content-type": "text/plain; charset=utf-8", "cache-control": "no-store" });
  res.end(`403 forbidden: ${why}\n`);
}

export async function startUiProxy(options: {
  adminSocket: string;
  port?: number;
  /** Where the link lands, e.g. `/ui/invocations/inv_…`. */
  startPath?: string;
}): Promise<UiProxy> {
  const token = randomBytes(32).toString("base64url");
  const session = randomBytes(32).toString("base64url");
  let tokenSpent = false;
  let port = 0;
  const server = http.createServer((req, res) => {
    // A page on another site that resolves its own name to 127.0.0.1 (DNS rebinding) sends its own
    // Host: only our address is served.
    const host = req.headers.host ?? "";
    if (host !== `127.0.0.1:${port}` && host !== `localhost:${port}`) {
      forbid(res, "unexpected Host header");
      return;
    }
    const url = new URL(req.url ?? "/", `http://${host}`);
    if (url.pathname === LOGIN_PATH) {
      if (tokenSpent || !sameSecret(url.searchParams.get("token") ?? undefined, token)) {
        forbid(res, "this link was used already or is wrong; run `pagent ui` again for a new one");
        return;
      }
      tokenSpent = true;
      const next = url.searchParams.get("next") ?? "/ui/";
      res.writeHead(302, {
        "set-cookie": `${COOKIE}=${session}; HttpOnly; SameSite=Strict; Path=/`,
        location: next.startsWith("/ui") ? next : "/ui/",
        "cache-control": "no-store",
      });
      res.end();
      return;
    }
    if (!sameSecret(cookieValue(req.headers.cookie, COOKIE), session)) {
      forbid(res, "open the link `pagent ui` printed");
      return;
    }
    const { cookie: _cookie, host: _host, ...headers } = req.headers;
    const upstream = http.request(
      {
        socketPath: options.adminSocket,
        path: req.url,
        method: req.method,
        headers: { ...headers, host: "localhost" },
      },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      },
    );
    upstream.on("error", (error) => {
      if (!res.headersSent) res.writeHead(502, { "content-type": "text/plain; charset=utf-8" });
      res.end(`the Restate admin API did not answer: ${error.message}\n`);
    });
    req.pipe(upstream);
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", (error: NodeJS.ErrnoException) =>
      reject(
        new UnavailableError(
          error.code === "EADDRINUSE"
            ? `port ${options.port} on 127.0.0.1 is already in use; choose another with --port`
            : `cannot listen on 127.0.0.1: ${error.message}`,
        ),
      ),
    );
    server.listen(options.port ?? 0, "127.0.0.1", resolve);
  });
  port = (server.address() as AddressInfo).port;
  const next = encodeURIComponent(options.startPath ?? "/ui/");
  return {
    url: `http://127.0.0.1:${port}${LOGIN_PATH}?token=${token}&next=${next}`,
    port,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
