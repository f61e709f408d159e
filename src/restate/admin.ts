import { UnavailableError } from "../errors.js";
import { tcpTarget, type HttpTarget } from "./transport.js";

/**
 * A thin client of Restate's admin API: registration, SQL introspection and invocation control. Over
 * TCP for a URL, or over a unix socket for the embedded server.
 */
export class AdminClient {
  readonly target: HttpTarget;
  /** Where the admin API is, as a user would name it (a URL, or `unix:/path/admin.sock`). */
  readonly url: string;

  constructor(
    target: HttpTarget | string,
    private readonly timeoutMs = 10_000,
  ) {
    this.target = typeof target === "string" ? tcpTarget(target) : target;
    this.url = this.target.label;
  }

  private fetch(path: string, init: RequestInit): Promise<Response> {
    return this.target.fetch(new URL(path, this.target.url), init);
  }

  private async request(path: string, init: RequestInit = {}): Promise<Response> {
    try {
      return await this.fetch(path, {
        ...init,
        signal: init.signal ?? AbortSignal.timeout(this.timeoutMs),
      });
    } catch (error) {
      throw new UnavailableError(
        `cannot reach the Restate admin API at ${this.url}: ${(error as Error).message}; is the server running? (try \`pagent server start\` or check --admin-url)`,
        { cause: error },
      );
    }
  }

  /** The body of an answer; one cut off midway (a node dying mid-query) means Restate is unavailable. */
  private async read(res: Response): Promise<string> {
    try {
      return await res.text();
    } catch (error) {
      throw new UnavailableError(
        `the Restate admin API at ${this.url} broke off its answer: ${(error as Error).message}`,
        { cause: error },
      );
    }
  }

  private async readJson<T>(res: Response): Promise<T> {
    const text = await this.read(res);
    try {
      return JSON.parse(text) as T;
    } catch (error) {
      throw new UnavailableError(
        `the Restate admin API at ${this.url} answered no JSON: ${text.slice(0, 200)}`,
        { cause: error },
      );
    }
  }

  async healthy(timeoutMs = 1000): Promise<boolean> {
    try {
      const res = await this.fetch("/health", {
        signal: AbortSignal.timeout(timeoutMs),
      });
      return res.ok;
    } catch {
      return false;
    }
  }

  /** True once SQL over every partition answers (each partition has a leader). */
  async queryable(timeoutMs = 1000): Promise<boolean> {
    try {
      const res = await this.fetch("/query", {
        method: "POST",
        headers: { "content-type": "application/json", accept: "application/json" },
        body: JSON.stringify({ query: "SELECT count(*) AS n FROM sys_invocation" }),
        signal: AbortSignal.timeout(timeoutMs),
      });
      return res.ok;
    } catch {
      return false;
    }
  }

  async version(): Promise<string | undefined> {
    const res = await this.request("/version");
    if (!res.ok) return undefined;
    return (await this.readJson<{ version?: string }>(res)).version;
  }

  /**
   * Registers (or re-registers) an endpoint; `force` lets a changed endpoint replace its old
   * registration. `http1`: the endpoint speaks HTTP/1.1 (request-response); Restate otherwise talks
   * HTTP/2 with prior knowledge to an http:// endpoint and its discovery fails.
   */
  async register(
    endpointUri: string,
    headers: Record<string, string> = {},
    { http1 = false }: { http1?: boolean } = {},
  ): Promise<void> {
    const res = await this.request("/deployments", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({
        uri: endpointUri,
        force: true,
        additional_headers: headers,
        ...(http1 ? { use_http_11: true } : {}),
      }),
    });
    if (!res.ok) {
      throw new UnavailableError(
        `Restate could not register the endpoint ${endpointUri}: HTTP ${res.status} ${(await this.read(res)).slice(0, 300)}`,
      );
    }
  }

  /**
   * Points every deployment registered at `fromUri` to `toUri` (PATCH /deployments/{id}, Restate
   * 1.7): the invocations pinned to it follow. Returns how many moved.
   */
  async moveDeployments(fromUri: string, toUri: string): Promise<number> {
    const res = await this.request("/deployments");
    if (!res.ok) {
      throw new UnavailableError(`Restate admin API answered HTTP ${res.status} for /deployments`);
    }
    const { deployments } = await this.readJson<{ deployments: { id: string; uri?: string }[] }>(
      res,
    );
    const same = (uri: string | undefined) =>
      uri?.replace(/\/+$/, "") === fromUri.replace(/\/+$/, "");
    let moved = 0;
    for (const deployment of deployments.filter((d) => same(d.uri))) {
      const update = await this.request(`/deployments/${encodeURIComponent(deployment.id)}`, {
        method: "PATCH",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ uri: toUri }),
      });
      if (!update.ok) {
        throw new UnavailableError(
          `Restate could not move the deployment ${deployment.id} from ${fromUri} to ${toUri}: HTTP ${update.status} ${(await this.read(update)).slice(0, 300)}`,
        );
      }
      moved++;
    }
    return moved;
  }

  async services(): Promise<string[]> {
    const res = await this.request("/services");
    if (!res.ok)
      throw new UnavailableError(`Restate admin API answered HTTP ${res.status} for /services`);
    const body = await this.readJson<{ services: { name: string }[] }>(res);
    return body.services.map((s) => s.name);
  }

  /** Runs SQL against Restate's introspection tables (sys_invocation, state, …). */
  async query<T>(sql: string): Promise<T[]> {
    const res = await this.request("/query", {
      method: "POST",
      // Without this the admin API answers in Arrow.
      headers: { "content-type": "application/json", accept: "application/json" },
      body: JSON.stringify({ query: sql }),
    });
    if (!res.ok) {
      throw new UnavailableError(
        `Restate query failed: HTTP ${res.status} ${(await this.read(res)).slice(0, 300)}`,
      );
    }
    return (await this.readJson<{ rows: T[] }>(res)).rows;
  }

  /** Ends a backoff or a pause now, instead of at the next retry tick. */
  async resume(invocationId: string): Promise<boolean> {
    const res = await this.request(`/invocations/${encodeURIComponent(invocationId)}/resume`, {
      method: "PATCH",
    });
    return res.ok;
  }

  async cancel(invocationId: string): Promise<boolean> {
    const res = await this.request(`/invocations/${encodeURIComponent(invocationId)}/cancel`, {
      method: "PATCH",
    });
    return res.ok;
  }
}

/** SQL string literal. Ids come from users (`pagent attach ID`), so they are escaped, never pasted. */
export function sqlString(value: string): string {
  return `'${value.replace(/'/g, "''")}'`;
}
