/**
 * How the CLI reaches one HTTP API of Restate (ingress or admin): over TCP for a server it connects
 * to, over a unix domain socket for the embedded and ephemeral servers, which listen on nothing
 * else so that no other local user can reach them (the socket's directory is the user's alone).
 */
import http from "node:http";
import { Readable } from "node:stream";

export interface HttpTarget {
  /** Base URL for requests; for a unix socket a placeholder host, the socket decides where they go. */
  url: string;
  fetch: typeof globalThis.fetch;
  /** What to show a user: the URL, or `unix:/path/to.sock`. */
  label: string;
  /** The socket's path, for a unix target. */
  socketPath?: string;
}

export function tcpTarget(url: string): HttpTarget {
  // Late-bound, so a test or a polyfill that replaces globalThis.fetch is used.
  return { url, label: url, fetch: (input, init) => globalThis.fetch(input, init) };
}

/**
 * Node's global fetch cannot be given a unix socket, so this is a small fetch over node:http, which
 * can (`socketPath`). It covers what pagent's callers send: a URL, a method, plain headers, a string
 * or byte body and an abort signal; the answer is a real Response. Chosen over undici's fetch with
 * a socket-bound Agent, which does the same but costs ~100 ms to import on every command.
 */
export function unixTarget(socketPath: string): HttpTarget {
  const fetchOverSocket: typeof globalThis.fetch = (input, init = {}) =>
    new Promise((resolve, reject) => {
      const { body, signal } = init;
      if (
        input instanceof Request ||
        (body != null && typeof body !== "string" && !(body instanceof Uint8Array))
      ) {
        reject(new TypeError("unixTarget's fetch takes a URL and a string or byte body"));
        return;
      }
      const url = new URL(input);
      const req = http.request(
        {
          socketPath,
          method: init.method ?? "GET",
          path: `${url.pathname}${url.search}`,
          headers: Object.fromEntries(new Headers(init.headers)),
          ...(signal ? { signal } : {}),
        },
        (res) => {
          const headers = new Headers();
          for (const [name, value] of Object.entries(res.headers)) {
            for (const one of Array.isArray(value) ? value : [value ?? ""])
              headers.append(name, one);
          }
          const status = res.statusCode ?? 502;
          const empty = status === 204 || status === 304 || init.method === "HEAD";
          if (empty) res.resume();
          resolve(
            new Response(empty ? null : (Readable.toWeb(res) as ReadableStream<Uint8Array>), {
              status,
              statusText: res.statusMessage ?? "",
              headers,
            }),
          );
        },
      );
      // As fetch does: an abort rejects with the signal's reason, anything else is "fetch failed"
      // with the socket's error (ECONNREFUSED, ENOENT, ...) as its cause.
      req.on("error", (error) =>
        reject(
          signal?.aborted && signal.reason instanceof Error
            ? signal.reason
            : new TypeError("fetch failed", { cause: error }),
        ),
      );
      req.end(body ?? undefined);
    });
  return {
    url: "http://localhost",
    label: `unix:${socketPath}`,
    socketPath,
    fetch: fetchOverSocket,
  };
}

/** A connect-mode address: `unix:/path/to.sock` or an http(s) URL. */
export function targetOf(address: string): HttpTarget {
  return address.startsWith("unix:")
    ? unixTarget(address.slice("unix:".length))
    : tcpTarget(address);
}
