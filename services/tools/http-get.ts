import { z } from "zod";
import { defineTool, throwIfAborted } from "./define-tool.js";
import { ToolError, type ToolDefinition } from "./types.js";

/** Default time budget for the whole request, redirects and body included. */
export const DEFAULT_HTTP_TIMEOUT_MS = 10_000;
/** Default number of body bytes returned before truncating. */
export const DEFAULT_HTTP_MAX_BYTES = 1024 * 1024;
/** Redirect hops followed before giving up. */
export const MAX_REDIRECTS = 5;

const REDIRECT_STATUSES = new Set([301, 302, 303, 307, 308]);

const DEFAULT_PORTS: Record<string, string> = { "http:": "80", "https:": "443" };

/** Splits "host", "host:port", "[v6]" or "[v6]:port" into a lower-cased host and optional port. */
export function parseAllowEntry(entry: string): { host: string; port?: string } {
  const trimmed = entry.trim().toLowerCase();
  const v6 = /^(\[[^\]]+\])(?::(\d+))?$/.exec(trimmed);
  if (v6) return { host: v6[1] ?? "", ...(v6[2] ? { port: v6[2] } : {}) };
  const hostPort = /^([^:]+):(\d+)$/.exec(trimmed);
  if (hostPort) return { host: hostPort[1] ?? "", port: hostPort[2] ?? "" };
  // URL.hostname keeps the brackets of an IPv6 literal, so a bare "::1" must gain them.
  return { host: trimmed.includes(":") ? `[${trimmed}]` : trimmed };
}

/** True when the URL's host (and port, if the entry names one) is in the allow list. */
export function isHostAllowed(url: URL, allowHosts: readonly string[]): boolean {
  const host = url.hostname.toLowerCase().replace(/\.$/, "");
  const port = url.port || DEFAULT_PORTS[url.protocol] || "";
  return allowHosts.some((entry) => {
    const allowed = parseAllowEntry(entry);
    return allowed.host.replace(/\.$/, "") === host && (!allowed.port || allowed.port === port);
  });
}

function checkUrl(url: URL, allowHosts: readonly string[], what: string): void {
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new ToolError("refused", `${what} ${url.href}: only http and https URLs are allowed`);
  }
  if (!isHostAllowed(url, allowHosts)) {
    const hostPort = url.port ? `${url.hostname}:${url.port}` : url.hostname;
    throw new ToolError(
      "refused",
      `${what} ${url.href}: host ${hostPort} is not allowed; the user can allow it with --allow-host ${url.hostname}`,
    );
  }
}

/** Reads at most maxBytes of the body, cancelling the rest so a huge body is never buffered. */
async function readCapped(
  body: ReadableStream<Uint8Array> | null,
  maxBytes: number,
): Promise<{ bytes: Uint8Array; truncated: boolean }> {
  if (!body) return { bytes: new Uint8Array(0), truncated: false };
  const reader = body.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  let truncated = false;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      const room = maxBytes - total;
      if (value.length > room) {
        chunks.push(value.subarray(0, room));
        total += room;
        truncated = true;
        break;
      }
      chunks.push(value);
      total += value.length;
    }
  } finally {
    if (truncated) await reader.cancel().catch(() => undefined);
    reader.releaseLock();
  }
  return { bytes: Buffer.concat(chunks, total), truncated };
}

function describeNetworkError(err: unknown): string {
  // undici reports "fetch failed" and hides the useful part (ECONNREFUSED, ENOTFOUND...) in cause.
  const message = err instanceof Error ? err.message : String(err);
  const cause = err instanceof Error ? (err.cause as { code?: unknown; message?: unknown }) : null;
  const detail = typeof cause?.code === "string" ? cause.code : cause?.message;
  return typeof detail === "string" && detail !== "" ? `${message} (${detail})` : message;
}

const argsSchema = z.strictObject({
  url: z.string().min(1).describe("Absolute http:// or https:// URL"),
});

/** http_get with a configurable timeout and body cap. */
export function createHttpGetTool(
  options: { timeoutMs?: number; maxBytes?: number } = {},
): ToolDefinition<z.infer<typeof argsSchema>> {
  const timeoutMs = options.timeoutMs ?? DEFAULT_HTTP_TIMEOUT_MS;
  const maxBytes = options.maxBytes ?? DEFAULT_HTTP_MAX_BYTES;
  return defineTool({
    name: "http_get",
    description:
      "Fetch a URL with HTTP GET and return the status line and the body as text. Only hosts " +
      `allowed by the user can be fetched; bodies over ${maxBytes} bytes are truncated.`,
    readOnly: true,
    argsSchema,
    run: async (args, ctx) => {
      throwIfAborted(ctx.signal, "http_get");
      let url: URL;
      try {
        url = new URL(args.url);
      } catch {
        throw new ToolError("invalid_args", `not a valid absolute URL: ${args.url}`);
      }
      checkUrl(url, ctx.allowHosts, "GET");
      const timeout = AbortSignal.timeout(timeoutMs);
      const signal = AbortSignal.any([ctx.signal, timeout]);
      const abortError = (err: unknown): ToolError | undefined => {
        if (ctx.signal.aborted) return new ToolError("failed", "http_get aborted", { cause: err });
        if (timeout.aborted) {
          return new ToolError("timeout", `GET ${url.href} timed out after ${timeoutMs} ms`, {
            cause: err,
          });
        }
        return undefined;
      };

      try {
        for (let hop = 0; ; hop++) {
          let response: Response;
          try {
            response = await fetch(url, {
              redirect: "manual",
              signal,
              headers: { "user-agent": "pagent", accept: "text/*, application/json, */*;q=0.5" },
            });
          } catch (err) {
            throw (
              abortError(err) ??
              new ToolError("transient", `GET ${url.href} failed: ${describeNetworkError(err)}`, {
                cause: err,
              })
            );
          }

          const location = response.headers.get("location");
          if (REDIRECT_STATUSES.has(response.status) && location) {
            await response.body?.cancel().catch(() => undefined);
            if (hop >= MAX_REDIRECTS) {
              throw new ToolError(
                "failed",
                `GET ${args.url}: more than ${MAX_REDIRECTS} redirects`,
              );
            }
            let next: URL;
            try {
              next = new URL(location, url);
            } catch {
              throw new ToolError("failed", `GET ${url.href}: invalid redirect to ${location}`);
            }
            // Every hop is re-checked: an allowed host must not bounce us to a forbidden one.
            checkUrl(next, ctx.allowHosts, `redirect from ${url.href} to`);
            url = next;
            continue;
          }

          const statusLine = `HTTP ${response.status}${response.statusText ? ` ${response.statusText}` : ""}`;
          if (response.status >= 500 || response.status === 429) {
            const { bytes } = await readCapped(response.body, 500);
            const snippet = new TextDecoder().decode(bytes).trim();
            throw new ToolError(
              "transient",
              `GET ${url.href}: ${statusLine}${snippet ? `: ${snippet}` : ""}`,
            );
          }

          const { bytes, truncated } = await readCapped(response.body, maxBytes);
          if (bytes.includes(0)) {
            const type = response.headers.get("content-type") ?? "unknown type";
            return `${statusLine}\n[binary body (${type}) omitted]`;
          }
          const text = new TextDecoder("utf-8").decode(bytes, { stream: truncated });
          const note = truncated ? `\n[truncated: showing the first ${bytes.length} bytes]` : "";
          return `${statusLine}\n${text}${note}`;
        }
      } catch (err) {
        if (err instanceof ToolError) throw err;
        // Aborts and connection resets can also surface while the body streams.
        throw (
          abortError(err) ??
          new ToolError("transient", `GET ${url.href} failed: ${describeNetworkError(err)}`, {
            cause: err,
          })
        );
      }
    },
  });
}

/** http_get with default limits. */
export const httpGetTool = createHttpGetTool();
