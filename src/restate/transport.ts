/**
 * How the CLI reaches one HTTP API of Restate (ingress or admin): over TCP for a server it connects
 * to, over a unix domain socket for the embedded and ephemeral servers, which listen on nothing
 * else so that no other local user can reach them (the socket's directory is the user's alone).
 */
import type { Agent, fetch as undiciFetch } from "undici";

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
 * Node's global fetch cannot be given a unix socket; undici's own fetch with an Agent bound to the
 * socket can (the same library Node's fetch is built on). Imported when first used, so commands that
 * never talk to a local server do not pay for loading it.
 */
export function unixTarget(socketPath: string): HttpTarget {
  let client: Promise<{ fetch: typeof undiciFetch; agent: Agent }> | undefined;
  // Called with a URL and an init (admin client, typed ingress client), never with a Request.
  const fetchOverSocket: typeof globalThis.fetch = async (input, init) => {
    if (input instanceof Request) throw new TypeError("unixTarget's fetch takes a URL");
    client ??= import("undici").then(({ fetch, Agent }) => ({
      fetch,
      agent: new Agent({ connect: { socketPath } }),
    }));
    const { fetch, agent } = await client;
    return fetch(input, { ...init, dispatcher: agent });
  };
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
