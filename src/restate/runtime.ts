import { createHash } from "node:crypto";
import { spawn } from "node:child_process";
import {
  mkdirSync,
  mkdtempSync,
  openSync,
  closeSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import http2 from "node:http2";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import lockfile from "proper-lockfile";
import { emptyGrants, fixedGrants, mergeGrants, type Asked } from "../../services/capabilities.js";
import { UnavailableError, UsageError } from "../errors.js";
import { grantsPath } from "../grants.js";
import { AdminClient } from "./admin.js";
import { hostEndpoint } from "./endpoint.js";
import {
  freePort,
  freePorts,
  isAlive,
  portIsFree,
  spawnServer,
  stopProcess,
  urlsOf,
  waitForServer,
  type ServerPorts,
} from "./server.js";

export type RuntimeMode = "embedded" | "ephemeral" | "connect";

export interface RuntimeOptions {
  mode: RuntimeMode;
  /** $PAGENT_HOME: state, data and logs of the embedded server. */
  home: string;
  ingressUrls: string[];
  adminUrls: string[];
  apiKey?: string;
  /** Other variables the endpoint reads for jobs (profiles' keys, `${VAR}` of headers), by name. */
  secretEnv?: Record<string, string>;
  version: string;
  /** What the command's job uses; the in-process endpoint of --ephemeral is granted just that. */
  grants?: Asked;
}

/** Where a command submits jobs and reads their state. */
export interface Runtime {
  mode: RuntimeMode;
  ingressUrl: string;
  admin: AdminClient;
  uiUrl: string;
  /** After Restate became unreachable: restart what died (embedded) or move to another node (connect). */
  recover(): Promise<void>;
  close(): Promise<void>;
}

/** What the embedded runtime remembers between commands (`$PAGENT_HOME/runtime.json`). */
export interface EmbeddedState {
  server?: { pid: number; ports: ServerPorts; startedAt: string };
  endpoint?: {
    pid: number;
    port: number;
    keyFingerprint: string;
    version: string;
    startedAt: string;
  };
}

const PACKAGE_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../..");
export const CLI_ENTRY = path.join(PACKAGE_ROOT, "bin", "pagent.js");

export const SERVICE_NAMES = ["Job", "Tasks"] as const;

export function embeddedPaths(home: string) {
  return {
    state: path.join(home, "runtime.json"),
    data: path.join(home, "restate"),
    logs: path.join(home, "logs"),
    serverLog: path.join(home, "logs", "restate.log"),
    endpointLog: path.join(home, "logs", "endpoint.log"),
  };
}

/**
 * Tells endpoints started with different credentials apart without keeping a key anywhere: the key
 * and every named secret variable (the same as before for the key alone).
 */
export function keyFingerprint(
  apiKey: string | undefined,
  secretEnv: Record<string, string> = {},
): string {
  const named = Object.keys(secretEnv)
    .sort()
    .map((name) => `\n${name}=${secretEnv[name]}`);
  return createHash("sha256")
    .update(`pagent:${apiKey ?? ""}${named.join("")}`)
    .digest("hex")
    .slice(0, 16);
}

export function readEmbeddedState(home: string): EmbeddedState {
  try {
    return JSON.parse(readFileSync(embeddedPaths(home).state, "utf8")) as EmbeddedState;
  } catch {
    return {};
  }
}

function writeEmbeddedState(home: string, state: EmbeddedState): void {
  const file = embeddedPaths(home).state;
  writeFileSync(`${file}.tmp`, JSON.stringify(state, null, 2));
  // rename is atomic: a concurrent reader sees the old or the new state, never half of one.
  renameSync(`${file}.tmp`, file);
}

export async function endpointHealthy(port: number, timeoutMs = 1000): Promise<boolean> {
  return new Promise((resolve) => {
    const session = http2.connect(`http://127.0.0.1:${port}`);
    const timer = setTimeout(() => {
      session.destroy();
      resolve(false);
    }, timeoutMs);
    session.on("error", () => {
      clearTimeout(timer);
      session.destroy();
      resolve(false);
    });
    const req = session.request({ ":path": "/health" });
    req.on("response", (headers) => {
      clearTimeout(timer);
      resolve(headers[":status"] === 200);
      session.close();
    });
    req.on("error", () => undefined);
    req.end();
  });
}

/** Waits until a spawned `pagent serve` answers on its port; fails early if it exits. */
async function waitForEndpoint(port: number, pid: number, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (!isAlive(pid))
      throw new UnavailableError("the pagent endpoint exited while starting; see its log");
    if (await endpointHealthy(port, 500)) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new UnavailableError(
    `the pagent endpoint did not answer on port ${port} within ${timeoutMs} ms`,
  );
}

/**
 * Jobs of pagent that are not finished, counted from Restate's invocation table. A finished job's
 * delayed `expire` call waits as 'scheduled' for days; it is no running job.
 */
export async function runningInvocations(admin: AdminClient): Promise<number> {
  const rows = await admin.query<{ n: number }>(
    `SELECT count(*) AS n FROM sys_invocation WHERE target_service_name = 'Job' AND status NOT IN ('completed', 'scheduled')`,
  );
  return Number(rows[0]?.n ?? 0);
}

/**
 * An endpoint that comes back finds its invocations waiting for a backoff tick (up to a minute) or
 * paused; resuming them now makes recovery immediate.
 */
export async function resumeStuckInvocations(admin: AdminClient): Promise<number> {
  const rows = await admin.query<{ id: string }>(
    `SELECT id FROM sys_invocation WHERE target_service_name IN ('Job', 'Tasks') AND status IN ('backing-off', 'paused')`,
  );
  const results = await Promise.all(rows.map((row) => admin.resume(row.id)));
  return results.filter(Boolean).length;
}

async function withLock<T>(home: string, fn: () => Promise<T>): Promise<T> {
  mkdirSync(home, { recursive: true });
  const release = await lockfile.lock(home, {
    lockfilePath: path.join(home, "runtime.lock"),
    retries: { retries: 600, minTimeout: 50, maxTimeout: 100, factor: 1 },
    stale: 10_000,
  });
  try {
    return await fn();
  } finally {
    await release();
  }
}

async function chooseServerPorts(previous: ServerPorts | undefined): Promise<ServerPorts> {
  if (previous) {
    const free = await Promise.all(
      [previous.ingress, previous.admin, previous.node].map((p) => portIsFree(p)),
    );
    if (free.every(Boolean)) return previous;
  }
  return freePorts();
}

/** Starts what is missing of the embedded server and endpoint, under a lock so two commands start one. */
export async function ensureEmbedded(
  options: RuntimeOptions,
): Promise<EmbeddedState & Required<Pick<EmbeddedState, "server" | "endpoint">>> {
  const paths = embeddedPaths(options.home);
  const fingerprint = keyFingerprint(options.apiKey, options.secretEnv);
  const current = readEmbeddedState(options.home);
  if (await embeddedReady(current, fingerprint, options.version)) {
    return current as EmbeddedState & Required<Pick<EmbeddedState, "server" | "endpoint">>;
  }
  return withLock(options.home, async () => {
    const state = readEmbeddedState(options.home);
    mkdirSync(paths.logs, { recursive: true });
    let restarted = false;
    if (
      !state.server ||
      !isAlive(state.server.pid) ||
      !(await new AdminClient(urlsOf(state.server.ports).adminUrl).healthy())
    ) {
      if (state.server && isAlive(state.server.pid)) await stopProcess(state.server.pid, 5000);
      const ports = await chooseServerPorts(state.server?.ports);
      const child = spawnServer({
        dataDir: paths.data,
        ports,
        logFile: paths.serverLog,
        detached: true,
      });
      await waitForServer(ports, 30_000, "127.0.0.1", child);
      state.server = { pid: child.pid!, ports, startedAt: new Date().toISOString() };
      writeEmbeddedState(options.home, state);
      restarted = true;
    }
    const admin = new AdminClient(urlsOf(state.server.ports).adminUrl);
    const endpoint = state.endpoint;
    const endpointUp = endpoint && isAlive(endpoint.pid) && (await endpointHealthy(endpoint.port));
    const stale =
      endpoint && (endpoint.keyFingerprint !== fingerprint || endpoint.version !== options.version);
    if (endpointUp && stale) {
      const busy = await runningInvocations(admin);
      if (busy > 0) {
        throw new UnavailableError(
          `the running pagent endpoint was started with a different OPENAI_API_KEY (or provider key) or pagent version and ${busy} job(s) are still running on it; wait for them (pagent jobs) or run \`pagent server stop\` first`,
        );
      }
      await stopProcess(endpoint.pid, 10_000);
    }
    if (!endpointUp || stale) {
      state.endpoint = await startEndpoint({
        previousPort: endpoint?.port,
        apiKey: options.apiKey,
        ...(options.secretEnv ? { secretEnv: options.secretEnv } : {}),
        logFile: paths.endpointLog,
        grantsFile: grantsPath(options.home),
        version: options.version,
      });
      writeEmbeddedState(options.home, state);
      await admin.register(`http://127.0.0.1:${state.endpoint.port}`);
      restarted = true;
    }
    if (restarted) await resumeStuckInvocations(admin);
    return state as EmbeddedState & Required<Pick<EmbeddedState, "server" | "endpoint">>;
  });
}

async function embeddedReady(
  state: EmbeddedState,
  fingerprint: string,
  version: string,
): Promise<boolean> {
  const { server, endpoint } = state;
  if (!server || !endpoint) return false;
  if (endpoint.keyFingerprint !== fingerprint || endpoint.version !== version) return false;
  if (!isAlive(server.pid) || !isAlive(endpoint.pid)) return false;
  const [serverOk, endpointOk] = await Promise.all([
    new AdminClient(urlsOf(server.ports).adminUrl).healthy(),
    endpointHealthy(endpoint.port),
  ]);
  return serverOk && endpointOk;
}

type EndpointRecord = NonNullable<EmbeddedState["endpoint"]>;

/**
 * Starts `pagent serve` on the port it had before, or on a free one if that is taken: Restate pins
 * invocations to the endpoint's URI, so only a stable port lets old invocations resume. `onSpawned`
 * sees the record before the endpoint answers, so a caller can remember the pid even if it dies now.
 */
export async function startEndpoint(options: {
  previousPort: number | undefined;
  apiKey: string | undefined;
  secretEnv?: Record<string, string>;
  logFile: string;
  /** The user's grants file (src/grants.ts), which the endpoint reads again whenever it changes. */
  grantsFile: string;
  version: string;
  onSpawned?: (record: EndpointRecord) => void;
}): Promise<EndpointRecord> {
  let port = options.previousPort;
  if (!port || !(await portIsFree(port))) port = await freePort();
  const pid = spawnEndpointProcess(
    port,
    { ...options.secretEnv, ...(options.apiKey ? { OPENAI_API_KEY: options.apiKey } : {}) },
    options.logFile,
    options.grantsFile,
  );
  const record: EndpointRecord = {
    pid,
    port,
    keyFingerprint: keyFingerprint(options.apiKey, options.secretEnv),
    version: options.version,
    startedAt: new Date().toISOString(),
  };
  options.onSpawned?.(record);
  await waitForEndpoint(port, pid);
  return record;
}

/** Starts `pagent serve` on loopback, detached, logging to `logFile`; returns its pid. */
function spawnEndpointProcess(
  port: number,
  secrets: Record<string, string>,
  logFile: string,
  grantsFile: string,
): number {
  const log = openSync(logFile, "a");
  const { OPENAI_API_KEY: _inherited, ...env } = process.env;
  const child = spawn(
    process.execPath,
    [CLI_ENTRY, "serve", "--host", "127.0.0.1", "--port", String(port), "--grants", grantsFile],
    {
      detached: true,
      stdio: ["ignore", log, log],
      // Keys reach the endpoint through its environment only: never argv, files or logs.
      env: { ...env, ...secrets },
    },
  );
  closeSync(log);
  child.unref();
  return child.pid!;
}

/** Stops the embedded endpoint and server; their data stays. */
export async function stopEmbedded(home: string, graceMs = 10_000): Promise<{ stopped: string[] }> {
  return withLock(home, async () => {
    const state = readEmbeddedState(home);
    const stopped: string[] = [];
    if (state.endpoint && isAlive(state.endpoint.pid)) {
      await stopProcess(state.endpoint.pid, graceMs);
      stopped.push("endpoint");
    }
    if (state.server && isAlive(state.server.pid)) {
      await stopProcess(state.server.pid, graceMs);
      stopped.push("restate-server");
    }
    writeEmbeddedState(home, {
      ...(state.server ? { server: { ...state.server, pid: 0 } } : {}),
      ...(state.endpoint ? { endpoint: { ...state.endpoint, pid: 0 } } : {}),
    });
    return { stopped };
  });
}

async function openEphemeral(options: RuntimeOptions): Promise<Runtime> {
  const dir = mkdtempSync(path.join(tmpdir(), "pagent-ephemeral-"));
  const cleanups: (() => Promise<void>)[] = [
    () => Promise.resolve(rmSync(dir, { recursive: true, force: true })),
  ];
  const close = async () => {
    while (cleanups.length > 0) await cleanups.pop()!().catch(() => undefined);
  };
  try {
    const ports = await freePorts();
    const child = spawnServer({
      dataDir: path.join(dir, "restate"),
      ports,
      logFile: path.join(dir, "restate.log"),
      detached: false,
    });
    cleanups.push(async () => {
      if (child.exitCode === null && child.signalCode === null) {
        const exited = new Promise((r) => child.once("exit", r));
        await stopProcess(child.pid!, 5000);
        await exited;
      }
    });
    await waitForServer(ports, 30_000, "127.0.0.1", child);
    const endpoint = await hostEndpoint({
      port: 0,
      host: "127.0.0.1",
      apiKey: options.apiKey,
      env: options.secretEnv ?? {},
      silent: true,
      grants: fixedGrants(mergeGrants(emptyGrants(), options.grants ?? {})),
    });
    cleanups.push(() => endpoint.close());
    const { adminUrl, ingressUrl } = urlsOf(ports);
    const admin = new AdminClient(adminUrl);
    await admin.register(endpoint.uri);
    return {
      mode: "ephemeral",
      ingressUrl,
      admin,
      uiUrl: `${adminUrl}/ui`,
      recover: () => Promise.resolve(),
      close,
    };
  } catch (error) {
    await close();
    throw error;
  }
}

/** The ingress/admin pairs of a server or cluster, in the order given; the n-th admin URL goes with the n-th ingress. */
function connectTargets(options: RuntimeOptions): { ingressUrl: string; adminUrl: string }[] {
  return options.ingressUrls.map((ingressUrl, i) => ({
    ingressUrl,
    adminUrl: options.adminUrls[i] ?? options.adminUrls[0] ?? deriveAdminUrl(ingressUrl),
  }));
}

async function openConnect(options: RuntimeOptions): Promise<Runtime> {
  const targets = connectTargets(options);
  let current = 0;
  const use = async (index: number) => {
    const target = targets[index]!;
    const admin = new AdminClient(target.adminUrl, 5000);
    const services = await admin.services();
    const missing = SERVICE_NAMES.filter((name) => !services.includes(name));
    if (missing.length > 0) {
      throw new UnavailableError(
        `pagent's services (${missing.join(", ")}) are not registered at ${target.adminUrl}; run \`pagent serve --register ${target.adminUrl}\` next to that server`,
      );
    }
    Object.assign(runtime, {
      ingressUrl: target.ingressUrl,
      admin,
      uiUrl: `${target.adminUrl}/ui`,
    });
    current = index;
  };
  /** Tries every node once, starting after the current one; throws the last node's error. */
  const failover = async (startAt: number) => {
    let lastError: unknown;
    for (let step = 0; step < targets.length; step++) {
      try {
        await use((startAt + step) % targets.length);
        return;
      } catch (error) {
        lastError = error;
      }
    }
    throw lastError;
  };
  const runtime: Runtime = {
    mode: "connect",
    ingressUrl: targets[0]!.ingressUrl,
    admin: new AdminClient(targets[0]!.adminUrl, 5000),
    uiUrl: `${targets[0]!.adminUrl}/ui`,
    recover: () => failover(current + 1),
    close: () => Promise.resolve(),
  };
  await failover(0);
  return runtime;
}

/** Restate's default layout: admin on 9070 when the ingress is on its default 8080. */
function deriveAdminUrl(ingressUrl: string): string {
  const url = new URL(ingressUrl);
  if (url.port !== "8080" && url.port !== "") {
    throw new UsageError(
      `cannot guess the admin URL of ${ingressUrl}; pass --admin-url (or RESTATE_ADMIN_URL)`,
    );
  }
  url.port = "9070";
  return url.origin;
}

/**
 * Runs a read or an idempotent action (attach, jobs, status, cancel) against Restate; while Restate is
 * unreachable or a cluster is moving partition leaders, recovers (restarts the embedded server, or
 * moves to the next node) and tries again, for up to `timeoutMs`.
 */
export async function withRecovery<T>(
  runtime: Pick<Runtime, "recover">,
  op: () => Promise<T>,
  timeoutMs = 30_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await op();
    } catch (error) {
      if (!(error instanceof UnavailableError) || Date.now() > deadline) throw error;
      await runtime.recover().catch(() => undefined);
      await new Promise((r) => setTimeout(r, 200));
    }
  }
}

/** Opens the runtime a command runs against: embedded (default), ephemeral or connect. */
export async function openRuntime(options: RuntimeOptions): Promise<Runtime> {
  if (options.mode === "ephemeral") return openEphemeral(options);
  if (options.mode === "connect") return openConnect(options);
  const state = await ensureEmbedded(options);
  const runtime: Runtime = {
    mode: "embedded",
    ...embeddedUrls(state.server.ports),
    recover: async () => {
      const recovered = await ensureEmbedded(options);
      Object.assign(runtime, embeddedUrls(recovered.server.ports));
    },
    close: () => Promise.resolve(),
  };
  return runtime;
}

function embeddedUrls(ports: ServerPorts): Pick<Runtime, "ingressUrl" | "admin" | "uiUrl"> {
  const { ingressUrl, adminUrl } = urlsOf(ports);
  return { ingressUrl, admin: new AdminClient(adminUrl), uiUrl: `${adminUrl}/ui` };
}
