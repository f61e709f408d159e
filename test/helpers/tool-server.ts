/**
 * A loopback HTTP server for `http_get` tests: every GET is logged with its start and end time,
 * and each path can be told to answer late, fail a number of times, or always fail.
 */
import http from "node:http";
import type { AddressInfo, Socket } from "node:net";
import { performance } from "node:perf_hooks";

/** How one path answers. */
export interface RouteBehaviour {
  /** Wait this long before answering (ms). */
  delayMs?: number;
  /** Answer `failStatus` to the first N requests, then 200. */
  failTimes?: number;
  /** Answer `failStatus` to every request. */
  alwaysFail?: boolean;
  /** Status of a failing answer (default 503). */
  failStatus?: number;
  /** Body of a successful answer (default `ok <path>`). */
  body?: string;
}

/** One request seen by the server. */
export interface ToolServerHit {
  path: string;
  /** Epoch ms, sub-ms precision. */
  startedAt: number;
  /** Epoch ms when the answer was written; undefined while pending. */
  endedAt: number | undefined;
  status: number | undefined;
}

export interface ToolServer extends AsyncDisposable {
  readonly port: number;
  /** `127.0.0.1:PORT`, for `--allow-host`. */
  readonly hostPort: string;
  /** `http://127.0.0.1:PORT<path>`. */
  url(path: string): string;
  readonly hits: ToolServerHit[];
  /** Requests seen for a path (all paths if omitted). */
  count(path?: string): number;
  /** Highest number of requests in flight at once. */
  readonly maxConcurrent: number;
  route(path: string, behaviour: RouteBehaviour): void;
  /** Forget routes, hits and counters. */
  reset(): void;
  close(): Promise<void>;
}

const now = () => performance.timeOrigin + performance.now();

export async function startToolServer(): Promise<ToolServer> {
  let routes = new Map<string, RouteBehaviour>();
  let hits: ToolServerHit[] = [];
  let inFlight = 0;
  let maxConcurrent = 0;
  const sockets = new Set<Socket>();

  const server = http.createServer((req, res) => {
    req.resume();
    res.on("error", () => undefined);
    const path = (req.url ?? "/").split("?")[0] ?? "/";
    const hit: ToolServerHit = { path, startedAt: now(), endedAt: undefined, status: undefined };
    const seenBefore = hits.filter((h) => h.path === path).length;
    hits.push(hit);
    inFlight++;
    maxConcurrent = Math.max(maxConcurrent, inFlight);
    const behaviour = routes.get(path) ?? {};
    const fail =
      behaviour.alwaysFail === true ||
      (behaviour.failTimes !== undefined && seenBefore < behaviour.failTimes);
    const status = fail ? (behaviour.failStatus ?? 503) : 200;
    const answer = () => {
      hit.status = status;
      hit.endedAt = now();
      inFlight--;
      res.writeHead(status, { "content-type": "text/plain" });
      res.end(fail ? `unavailable ${path}` : (behaviour.body ?? `ok ${path}`));
    };
    if (behaviour.delayMs) setTimeout(answer, behaviour.delayMs);
    else answer();
  });
  server.on("connection", (socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
  });
  server.on("clientError", (_err, socket) => socket.destroy());
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      server.off("error", reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  let closing: Promise<void> | undefined;
  const close = () => {
    closing ??= new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
      for (const s of sockets) s.destroy();
    });
    return closing;
  };
  return {
    port,
    hostPort: `127.0.0.1:${port}`,
    url: (path) => `http://127.0.0.1:${port}${path}`,
    get hits() {
      return hits;
    },
    count: (path) =>
      path === undefined ? hits.length : hits.filter((h) => h.path === path).length,
    get maxConcurrent() {
      return maxConcurrent;
    },
    route(path, behaviour) {
      routes.set(path, behaviour);
    },
    reset() {
      routes = new Map();
      hits = [];
      inFlight = 0;
      maxConcurrent = 0;
    },
    close,
    [Symbol.asyncDispose]: close,
  };
}
