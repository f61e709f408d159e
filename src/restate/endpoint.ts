import http from "node:http";
import http2 from "node:http2";
import type { AddressInfo, Socket } from "node:net";
import type { GrantSource } from "../../services/capabilities.js";
import type { ServiceSet } from "../../services/types.js";
import type { Protocol } from "../serve-config.js";
import { UnavailableError } from "../errors.js";

export interface EndpointOptions {
  port: number;
  host: string;
  apiKey?: string;
  /** Where profiles' `apiKeyEnv` and headers' `${VAR}` are read, for granted ones only. */
  env: Record<string, string | undefined>;
  identityKeys?: string[];
  /** What jobs may use: base URLs, command tools, roots, hosts (services/capabilities.ts). */
  grants: GrantSource;
  /** Which services this endpoint hosts (default all). */
  services?: ServiceSet;
  /** Default bidirectional (HTTP/2); request-response is HTTP/1.1, as serverless platforms and proxies speak it. */
  protocol?: Protocol;
  /** Drop the SDK's log lines: in-process (ephemeral) they would land on the command's stdout. */
  silent?: boolean;
}

export interface HostedEndpoint extends AsyncDisposable {
  uri: string;
  port: number;
  close(): Promise<void>;
}

/**
 * Hosts pagent's services on a real HTTP/2 server (bidirectional), or an HTTP/1.1 one in
 * request-response mode. `restate.serve()` would listen on every interface; this binds the address
 * we are given (loopback by default).
 */
export async function hostEndpoint(options: EndpointOptions): Promise<HostedEndpoint> {
  const [restate, { createServices }] = await Promise.all([
    import("@restatedev/restate-sdk"),
    import("../../services/index.js"),
  ]);
  const services = createServices(
    { apiKey: options.apiKey, env: options.env },
    options.grants,
    options.services,
  );
  let endpoint = restate.endpoint();
  if (options.silent) endpoint = endpoint.setLogger(() => undefined);
  for (const service of services.all) endpoint = endpoint.bind(service);
  if (options.identityKeys && options.identityKeys.length > 0) {
    endpoint = endpoint.withIdentityV1(...options.identityKeys);
  }
  // HTTP/1.1 carries no stream both ways: each request carries the journal so far, each response
  // the new entries, and the invocation suspends whenever it waits (the SDK's REQUEST_RESPONSE mode).
  const server =
    options.protocol === "request-response"
      ? http.createServer(endpoint.http1Handler())
      : http2.createServer(endpoint.handler());
  const sessions = new Set<http2.ServerHttp2Session>();
  server.on("session", (session: http2.ServerHttp2Session) => {
    sessions.add(session);
    session.on("close", () => sessions.delete(session));
  });
  // A session a client closed gracefully is gone from `sessions` while its socket may stay open,
  // and server.close() waits for every socket: track them too, or SIGTERM never ends `pagent serve`.
  const sockets = new Set<Socket>();
  server.on("connection", (socket: Socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", (error: NodeJS.ErrnoException) =>
      reject(
        new UnavailableError(
          error.code === "EADDRINUSE"
            ? `port ${options.port} on ${options.host} is already in use; choose another with --port`
            : `cannot listen on ${options.host}:${options.port}: ${error.message}`,
        ),
      ),
    );
    server.listen(options.port, options.host, resolve);
  });
  const { port } = server.address() as AddressInfo;
  const close = async () => {
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    for (const session of sessions) session.destroy();
    for (const socket of sockets) socket.destroy();
    await closed;
  };
  const host = options.host.includes(":") ? `[${options.host}]` : options.host;
  return { uri: `http://${host}:${port}`, port, close, [Symbol.asyncDispose]: close };
}
