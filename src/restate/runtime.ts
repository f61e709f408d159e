import { createHash } from "node:crypto";
import { spawn } from "node:child_process";
import {
  chmodSync,
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
import { JOB_SERVICE, SERVICE_NAMES } from "../../services/types.js";
import { UnavailableError, UsageError } from "../errors.js";
import { grantsPath } from "../grants.js";
import { AdminClient, sqlString } from "./admin.js";
import {
  diskTrouble,
  diskTroubleMessage,
  freeBytes,
  MIN_FREE_BYTES,
  type DiskTrouble,
} from "./disk.js";
import { hostEndpoint } from "./endpoint.js";
import { ensureIdentityKey, readPublicKey } from "./identity.js";
import { argValue, findOwnProcesses } from "./processes.js";
import {
  checkSocketPaths,
  freePort,
  isAlive,
  portIsFree,
  processStartTime,
  serverSockets,
  socketTargets,
  spawnServer,
  stopProcess,
  verifyOwnProcess,
  waitForServer,
  type ExpectedProcess,
  type ServerOptions,
  type ServerTargets,
} from "./server.js";
import { targetOf, type HttpTarget } from "./transport.js";

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
  /** Tells the user something they did not ask for happened (one stderr line). */
  notice?: (line: string) => void;
}

/** Where a command submits jobs and reads their state. */
export interface Runtime {
  mode: RuntimeMode;
  ingress: HttpTarget;
  admin: AdminClient;
  /** How the user opens the Restate UI (at an invocation): a URL, or the `pagent ui` command. */
  ui(invocationId?: string): string;
  /** After Restate became unreachable: restart what died (embedded) or move to another node (connect). */
  recover(): Promise<void>;
  /** Embedded: whether the server has hit a full disk since it started (see disk.ts). */
  diskTrouble?(): DiskTrouble | undefined;
  close(): Promise<void>;
}

/** What the embedded runtime remembers between commands (`$PAGENT_HOME/runtime.json`). */
export interface EmbeddedState {
  /**
   * The server listens on unix sockets only, in its data dir ({@link serverSockets}). `startTime`:
   * see processStartTime; with the command line it proves a pid is still ours.
   */
  server?: { pid: number; startedAt: string; startTime?: number };
  endpoint?: {
    pid: number;
    startTime?: number;
    port: number;
    keyFingerprint: string;
    version: string;
    /** The request identity key it accepts (`publickeyv1_…`). */
    identityKey?: string;
    startedAt: string;
  };
}

const PACKAGE_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../..");
export const CLI_ENTRY = path.join(PACKAGE_ROOT, "bin", "pagent.js");

export { SERVICE_NAMES };

export function embeddedPaths(home: string) {
  const data = path.join(home, "restate");
  return {
    state: path.join(home, "runtime.json"),
    data,
    sockets: serverSockets(data),
    logs: path.join(home, "logs"),
    serverLog: path.join(home, "logs", "restate.log"),
    endpointLog: path.join(home, "logs", "endpoint.log"),
    /** restate-server's request identity private key (0600). */
    identityKey: path.join(home, "identity.pem"),
    /** restate-server's TMPDIR: its scratch dirs stay private and are cleared before each start. */
    tmp: path.join(home, "tmp"),
  };
}

/**
 * A directory only the user can enter: the embedded server's sockets, data and logs live below it,
 * so no other local user can reach or read them (a home made by an older pagent is tightened too).
 */
export function makePrivateDir(dir: string): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  chmodSync(dir, 0o700);
}

/** The command that opens the UI of a server only the user's own CLI can reach. */
export function privateUi(invocationId?: string): string {
  return invocationId ? `pagent ui ${invocationId}` : "pagent ui";
}

const privateUiHint: Runtime["ui"] = (invocationId) => `run \`${privateUi(invocationId)}\``;

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

/**
 * The remembered state, with every pid that is no longer the process pagent started set to 0 (not
 * running): everything downstream that checks or signals a pid only ever sees our own processes.
 */
export function readEmbeddedState(home: string): EmbeddedState {
  let state: EmbeddedState;
  try {
    state = JSON.parse(readFileSync(embeddedPaths(home).state, "utf8")) as EmbeddedState;
  } catch {
    return {};
  }
  const { server, endpoint } = state;
  if (server && !verifyOwnProcess(server.pid, ownServer(home, server.startTime))) server.pid = 0;
  if (endpoint && !verifyOwnProcess(endpoint.pid, ownEndpoint(endpoint.startTime)))
    endpoint.pid = 0;
  return state;
}

/** The embedded restate-server: the binary, on this home's data dir. */
function ownServer(home: string, startTime: number | undefined): ExpectedProcess {
  return { startTime, args: ["restate-server", embeddedPaths(home).data] };
}

/** A `pagent serve` endpoint started by pagent. */
export function ownEndpoint(startTime: number | undefined): ExpectedProcess {
  return { startTime, args: ["pagent.js", "serve"] };
}

/** Set on the endpoint pagent spawns: its build id, so an endpoint found without the state file is known. */
const ENDPOINT_BUILD_ENV = "PAGENT_ENDPOINT_BUILD";

/**
 * The state file, completed with what runs for this home though the file does not know it (deleted,
 * corrupt, or lost by a command that died while writing it): restate-server on our data dir, and
 * the endpoint that accepts our identity key. Without this, a new server could not open the data
 * dir the old one holds, and `server stop` would not know what to stop.
 */
export function liveEmbeddedState(home: string): EmbeddedState {
  const state = readEmbeddedState(home);
  const paths = embeddedPaths(home);
  if (!isAlive(state.server?.pid)) {
    const [server] = findOwnProcesses(
      (argv) =>
        path.basename(argv[0] ?? "") === "restate-server" &&
        argValue(argv, "--base-dir") === paths.data,
    );
    if (server) state.server = { pid: server.pid, startedAt: "unknown (found running)" };
  }
  const identityKey = isAlive(state.endpoint?.pid) ? undefined : readPublicKey(paths.identityKey);
  if (identityKey) {
    const [endpoint] = findOwnProcesses(
      (argv) => argv.includes("serve") && argValue(argv, "--identity-key") === identityKey,
    );
    const port = Number(endpoint && argValue(endpoint.argv, "--port"));
    if (endpoint && port > 0) {
      state.endpoint = {
        pid: endpoint.pid,
        port,
        keyFingerprint: keyFingerprint(endpoint.env.OPENAI_API_KEY),
        version: endpoint.env[ENDPOINT_BUILD_ENV] ?? "unknown",
        identityKey,
        startedAt: "unknown (found running)",
      };
    }
  }
  return state;
}

function writeEmbeddedState(home: string, state: EmbeddedState): void {
  const file = embeddedPaths(home).state;
  writeFileSync(`${file}.tmp`, JSON.stringify(state, null, 2), { mode: 0o600 });
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
    `SELECT count(*) AS n FROM sys_invocation WHERE target_service_name = ${sqlString(JOB_SERVICE)} AND status NOT IN ('completed', 'scheduled')`,
  );
  return Number(rows[0]?.n ?? 0);
}

/**
 * An endpoint that comes back finds its invocations waiting for a backoff tick (up to a minute) or
 * paused; resuming them now makes recovery immediate.
 */
export async function resumeStuckInvocations(admin: AdminClient): Promise<number> {
  const rows = await admin.query<{ id: string }>(
    `SELECT id FROM sys_invocation WHERE target_service_name IN (${SERVICE_NAMES.map(sqlString).join(", ")}) AND status IN ('backing-off', 'paused')`,
  );
  const results = await Promise.all(rows.map((row) => admin.resume(row.id)));
  return results.filter(Boolean).length;
}

async function withLock<T>(home: string, fn: () => Promise<T>): Promise<T> {
  makePrivateDir(home);
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

/** Starts what is missing of the embedded server and endpoint, under a lock so two commands start one. */
export async function ensureEmbedded(
  options: RuntimeOptions,
): Promise<EmbeddedState & Required<Pick<EmbeddedState, "server" | "endpoint">>> {
  const paths = embeddedPaths(options.home);
  checkSocketPaths(paths.data);
  const fingerprint = keyFingerprint(options.apiKey, options.secretEnv);
  const targets = socketTargets(paths.data);
  const current = readEmbeddedState(options.home);
  const troubled = diskTrouble(paths, current.server?.startedAt);
  if (!troubled && (await embeddedReady(current, targets, fingerprint, options.version))) {
    return current as EmbeddedState & Required<Pick<EmbeddedState, "server" | "endpoint">>;
  }
  return withLock(options.home, async () => {
    const state = liveEmbeddedState(options.home);
    makePrivateDir(paths.logs);
    const identityKey = ensureIdentityKey(paths.identityKey);
    let restarted = false;
    let moved = false;
    const serverOptions = {
      dataDir: paths.data,
      logFile: paths.serverLog,
      identityKeyFile: paths.identityKey,
      tmpDir: paths.tmp,
    };
    // A server that hit a full disk answers health checks but its partitions stay down: restart it
    // once space is back; until then say so instead of starting one that would fail at once.
    const trouble = diskTrouble(paths, state.server?.startedAt);
    if (trouble && !trouble.spaceBack) throw new UnavailableError(diskTroubleMessage(trouble));
    if (
      trouble ||
      !state.server ||
      !isAlive(state.server.pid) ||
      !(await targets.admin.healthy())
    ) {
      if (state.server && isAlive(state.server.pid)) await stopProcess(state.server.pid, 5000);
      // Nothing runs on this data dir now (we hold the lock): scratch dirs of a killed server go.
      rmSync(paths.tmp, { recursive: true, force: true });
      makePrivateDir(paths.tmp);
      const previous = state.endpoint;
      if (previous && !isAlive(previous.pid) && !(await portIsFree(previous.port))) {
        // Another process took the endpoint's port while everything was stopped. Running jobs are
        // pinned to that address: move them to a new endpoint before any of them runs again, so
        // that process receives nothing (#13.5).
        state.endpoint = await startEndpoint({
          previousPort: previous.port,
          apiKey: options.apiKey,
          identityKey,
          logFile: paths.endpointLog,
          grantsFile: grantsPath(options.home),
          version: options.version,
        });
        writeEmbeddedState(options.home, state);
        await moveDeploymentsWhileIdle(serverOptions, previous.port, state.endpoint.port);
        moved = true;
      }
      const child = spawnServer({ ...serverOptions, detached: true });
      await waitForServer(targets, 30_000, child).catch((error: unknown) => {
        const free = freeBytes(paths.data);
        if (free >= MIN_FREE_BYTES) throw error;
        throw new UnavailableError(
          `restate-server could not start: the disk of ${paths.data} is full (${Math.floor(free / 1024 / 1024)} MiB free); free space and try again (log: ${paths.serverLog})`,
          { cause: error },
        );
      });
      state.server = {
        pid: child.pid!,
        startTime: processStartTime(child.pid!),
        startedAt: new Date().toISOString(),
      };
      writeEmbeddedState(options.home, state);
      restarted = true;
    }
    const admin = targets.admin;
    const endpoint = state.endpoint;
    const endpointUp = endpoint && isAlive(endpoint.pid) && (await endpointHealthy(endpoint.port));
    const stale =
      endpoint &&
      (endpoint.keyFingerprint !== fingerprint ||
        endpoint.version !== options.version ||
        endpoint.identityKey !== identityKey);
    if (endpointUp && stale) {
      const busy = await runningInvocations(admin);
      if (busy > 0) {
        throw new UnavailableError(
          `the running pagent endpoint was started with a different OPENAI_API_KEY (or provider key) or pagent version and ${busy} job(s) are still running on it; wait for them (pagent jobs) or run \`pagent server stop\` first`,
        );
      }
      await stopProcess(endpoint.pid, 10_000);
    }
    if (endpointUp && stale) {
      options.notice?.(
        `restarting the background endpoint: it was started ${
          endpoint.keyFingerprint !== fingerprint
            ? "with a different OPENAI_API_KEY"
            : `by another pagent install or build (${endpoint.version}, this is ${options.version})`
        }`,
      );
    }
    if (!endpointUp || stale) {
      state.endpoint = await startEndpoint({
        previousPort: endpoint?.port,
        apiKey: options.apiKey,
        identityKey,
        ...(options.secretEnv ? { secretEnv: options.secretEnv } : {}),
        logFile: paths.endpointLog,
        grantsFile: grantsPath(options.home),
        version: options.version,
      });
      writeEmbeddedState(options.home, state);
      await registerEndpoint(admin, state.endpoint.port, endpoint?.port);
      restarted = true;
    } else if (moved) {
      // The moved deployment kept the old endpoint's services; the new endpoint's replace them.
      await registerEndpoint(admin, state.endpoint!.port, undefined);
    }
    if (restarted) await resumeStuckInvocations(admin);
    return state as EmbeddedState & Required<Pick<EmbeddedState, "server" | "endpoint">>;
  });
}

async function embeddedReady(
  state: EmbeddedState,
  targets: ServerTargets,
  fingerprint: string,
  version: string,
): Promise<boolean> {
  const { server, endpoint } = state;
  if (!server || !endpoint) return false;
  if (endpoint.keyFingerprint !== fingerprint || endpoint.version !== version) return false;
  if (!endpoint.identityKey) return false;
  if (!isAlive(server.pid) || !isAlive(endpoint.pid)) return false;
  const [serverOk, endpointOk] = await Promise.all([
    targets.admin.healthy(),
    endpointHealthy(endpoint.port),
  ]);
  return serverOk && endpointOk;
}

type EndpointRecord = NonNullable<EmbeddedState["endpoint"]>;

/**
 * Moves the deployment at `fromPort` to `toPort` with restate-server running as admin and metadata
 * server only: without its worker role no invocation runs, so nothing is sent to the old address
 * meanwhile. Restate checks the new address (discovery), so the endpoint there must be up.
 */
async function moveDeploymentsWhileIdle(
  server: Omit<ServerOptions, "detached" | "roles">,
  fromPort: number,
  toPort: number,
): Promise<void> {
  const child = spawnServer({ ...server, detached: false, roles: ["admin", "metadata-server"] });
  const { admin } = socketTargets(server.dataDir);
  const deadline = Date.now() + 30_000;
  try {
    for (;;) {
      if (child.exitCode !== null) {
        throw new UnavailableError(
          `restate-server exited with code ${child.exitCode} while moving the endpoint; see ${server.logFile}`,
        );
      }
      try {
        if (await admin.healthy(500)) {
          await admin.moveDeployments(`http://127.0.0.1:${fromPort}`, `http://127.0.0.1:${toPort}`);
          return;
        }
      } catch (error) {
        if (!(error instanceof UnavailableError) || Date.now() > deadline) throw error;
      }
      if (Date.now() > deadline) {
        throw new UnavailableError("restate-server did not answer while moving the endpoint");
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  } finally {
    const exited = new Promise((r) => child.once("exit", r));
    if (child.exitCode === null) {
      await stopProcess(child.pid!, 5000);
      await exited;
    }
  }
}

/**
 * Registers the endpoint on `port`. When it had to leave `previousPort` (another process took it),
 * the deployment at the old address is moved first: Restate pins invocations to their deployment,
 * so without the move running jobs would wait for ever on the old port, and whatever holds it would
 * receive their requests.
 */
export async function registerEndpoint(
  admin: AdminClient,
  port: number,
  previousPort: number | undefined,
): Promise<void> {
  const uri = `http://127.0.0.1:${port}`;
  if (previousPort !== undefined && previousPort !== port) {
    await admin.moveDeployments(`http://127.0.0.1:${previousPort}`, uri);
  }
  await admin.register(uri);
}

/**
 * Starts `pagent serve` on the port it had before, or on a free one if that is taken: Restate pins
 * invocations to the endpoint's URI, so only a stable port lets old invocations resume. `onSpawned`
 * sees the record before the endpoint answers, so a caller can remember the pid even if it dies now.
 */
export async function startEndpoint(options: {
  previousPort: number | undefined;
  apiKey: string | undefined;
  /** The only request identity the endpoint accepts: its Restate's (`publickeyv1_…`). */
  identityKey: string;
  /** Variables the config's provider profiles and headers name (keys among them). */
  secretEnv?: Record<string, string>;
  logFile: string;
  /** The user's grants file (src/grants.ts), which the endpoint reads again whenever it changes. */
  grantsFile: string;
  version: string;
  onSpawned?: (record: EndpointRecord) => void;
}): Promise<EndpointRecord> {
  let port = options.previousPort;
  if (!port || !(await portIsFree(port))) port = await freePort();
  const pid = spawnEndpointProcess({ ...options, port });
  const record: EndpointRecord = {
    pid,
    startTime: processStartTime(pid),
    port,
    keyFingerprint: keyFingerprint(options.apiKey, options.secretEnv),
    version: options.version,
    identityKey: options.identityKey,
    startedAt: new Date().toISOString(),
  };
  options.onSpawned?.(record);
  await waitForEndpoint(port, pid);
  return record;
}

/** Starts `pagent serve` on loopback, detached, logging to `logFile`; returns its pid. */
function spawnEndpointProcess(options: {
  port: number;
  apiKey: string | undefined;
  secretEnv?: Record<string, string>;
  identityKey: string;
  logFile: string;
  grantsFile: string;
  version: string;
}): number {
  const log = openSync(options.logFile, "a", 0o600);
  // Identity keys of the caller's environment would let another Restate in: ours is the only one.
  const { OPENAI_API_KEY: _inherited, RESTATE_IDENTITY_KEYS: _keys, ...env } = process.env;
  const args = [
    "serve",
    "--host",
    "127.0.0.1",
    "--port",
    String(options.port),
    // Public, so argv is fine: only requests signed by our restate-server are served.
    "--identity-key",
    options.identityKey,
    "--grants",
    options.grantsFile,
  ];
  const child = spawn(process.execPath, [CLI_ENTRY, ...args], {
    detached: true,
    stdio: ["ignore", log, log],
    // Keys reach the endpoint through its environment only: never argv, files or logs.
    env: {
      ...env,
      ...options.secretEnv,
      ...(options.apiKey ? { OPENAI_API_KEY: options.apiKey } : {}),
      [ENDPOINT_BUILD_ENV]: options.version,
    },
  });
  closeSync(log);
  child.unref();
  return child.pid!;
}

/** Stops the embedded endpoint and server; their data stays. */
export async function stopEmbedded(home: string, graceMs = 10_000): Promise<{ stopped: string[] }> {
  return withLock(home, async () => {
    const state = liveEmbeddedState(home);
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
  // mkdtemp makes the directory 0700: the server's sockets, data, key and scratch dirs are private.
  const dir = mkdtempSync(path.join(tmpdir(), "pagent-ephemeral-"));
  const cleanups: (() => Promise<void>)[] = [
    () => Promise.resolve(rmSync(dir, { recursive: true, force: true })),
  ];
  const close = async () => {
    while (cleanups.length > 0) await cleanups.pop()!().catch(() => undefined);
  };
  try {
    const dataDir = path.join(dir, "restate");
    checkSocketPaths(dataDir);
    const keyFile = path.join(dir, "identity.pem");
    const identityKey = ensureIdentityKey(keyFile);
    const tmp = path.join(dir, "tmp");
    makePrivateDir(tmp);
    const child = spawnServer({
      dataDir,
      logFile: path.join(dir, "restate.log"),
      detached: false,
      identityKeyFile: keyFile,
      // restate-server leaves `invoker-*` dirs in its TMPDIR: inside `dir`, they go with it.
      tmpDir: tmp,
    });
    cleanups.push(async () => {
      if (child.exitCode === null && child.signalCode === null) {
        const exited = new Promise((r) => child.once("exit", r));
        await stopProcess(child.pid!, 5000);
        await exited;
      }
    });
    const targets = socketTargets(dataDir);
    await waitForServer(targets, 30_000, child);
    const endpoint = await hostEndpoint({
      port: 0,
      host: "127.0.0.1",
      apiKey: options.apiKey,
      identityKeys: [identityKey],
      env: options.secretEnv ?? {},
      silent: true,
      grants: fixedGrants(mergeGrants(emptyGrants(), options.grants ?? {})),
    });
    cleanups.push(() => endpoint.close());
    await targets.admin.register(endpoint.uri);
    return {
      mode: "ephemeral",
      ...targets,
      ui: privateUiHint,
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
    const admin = new AdminClient(targetOf(target.adminUrl), 5000);
    const services = await admin.services();
    const missing = SERVICE_NAMES.filter((name) => !services.includes(name));
    if (missing.length > 0) {
      throw new UnavailableError(
        `pagent's services (${missing.join(", ")}) are not registered at ${target.adminUrl}; run \`pagent serve --register ${target.adminUrl}\` next to that server`,
      );
    }
    Object.assign(runtime, {
      ingress: targetOf(target.ingressUrl),
      admin,
      ui: connectUi(target.adminUrl),
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
    ingress: targetOf(targets[0]!.ingressUrl),
    admin: new AdminClient(targetOf(targets[0]!.adminUrl), 5000),
    ui: connectUi(targets[0]!.adminUrl),
    recover: () => failover(current + 1),
    close: () => Promise.resolve(),
  };
  await failover(0);
  return runtime;
}

/**
 * A server reached over the network serves its UI itself, next to its admin API; one on a unix
 * socket (the local cluster) is opened through `pagent ui`, with the same connect flags.
 */
function connectUi(adminUrl: string): Runtime["ui"] {
  if (adminUrl.startsWith("unix:")) {
    return (invocationId) => `run \`${privateUi(invocationId)}\` with the same --admin-url`;
  }
  return (invocationId) => `${adminUrl}/ui${invocationId ? `/invocations/${invocationId}` : ""}`;
}

/** Restate's default layout: admin on 9070 when the ingress is on its default 8080. */
function deriveAdminUrl(ingressUrl: string): string {
  // Restate puts a node's sockets side by side.
  if (ingressUrl.startsWith("unix:") && ingressUrl.endsWith("/ingress.sock")) {
    return ingressUrl.replace(/\/ingress\.sock$/, "/admin.sock");
  }
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
  await ensureEmbedded(options);
  return {
    mode: "embedded",
    ...socketTargets(embeddedPaths(options.home).data),
    ui: privateUiHint,
    recover: async () => {
      await ensureEmbedded(options);
    },
    diskTrouble: () =>
      diskTrouble(embeddedPaths(options.home), readEmbeddedState(options.home).server?.startedAt),
    close: () => Promise.resolve(),
  };
}
