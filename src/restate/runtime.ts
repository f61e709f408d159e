import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { emptyGrants, fixedGrants, mergeGrants, type Asked } from "../../services/capabilities.js";
import { SERVICE_NAMES } from "../../services/types.js";
import { UnavailableError, UsageError } from "../errors.js";
import { AdminClient } from "./admin.js";
import {
  diskTrouble,
  diskTroubleMessage,
  freeBytes,
  MIN_FREE_BYTES,
  type DiskTrouble,
} from "./disk.js";
import { hostEndpoint } from "./endpoint.js";
import {
  endpointHealthy,
  ensureEndpoint,
  findRunningEndpoint,
  forgetIfNotOurs,
  keyFingerprint,
  registerEndpoint,
  resumeStuckInvocations,
  startEndpoint,
  endpointSpec,
  type EndpointRecord,
  type EndpointSettings,
} from "./endpoint-process.js";
import { ensureIdentityKey, readPublicKey } from "./identity.js";
import { argValue, findOwnProcesses } from "./processes.js";
import { retryAdmin, retryWhileUnavailable } from "./retry.js";
import {
  checkSocketPaths,
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
import { makePrivateDir, readStateFile, withStateLock, writeStateFile } from "./state-file.js";
import { targetOf, type HttpTarget } from "./transport.js";

export type RuntimeMode = "embedded" | "ephemeral" | "connect";

/** `home` ($PAGENT_HOME) holds the state, data and logs of the embedded server. */
export interface RuntimeOptions extends EndpointSettings {
  mode: RuntimeMode;
  ingressUrls: string[];
  adminUrls: string[];
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
  endpoint?: EndpointRecord;
}

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

/** The command that opens the UI of a server only the user's own CLI can reach. */
export function privateUi(invocationId?: string): string {
  return invocationId ? `pagent ui ${invocationId}` : "pagent ui";
}

const privateUiHint: Runtime["ui"] = (invocationId) => `run \`${privateUi(invocationId)}\``;

/**
 * The remembered state, with every pid that is no longer the process pagent started set to 0 (not
 * running): everything downstream that checks or signals a pid only ever sees our own processes.
 */
export function readEmbeddedState(home: string): EmbeddedState {
  const state = readStateFile<EmbeddedState>(embeddedPaths(home).state) ?? {};
  const { server } = state;
  if (server && !verifyOwnProcess(server.pid, ownServer(home, server.startTime))) server.pid = 0;
  forgetIfNotOurs(state.endpoint);
  return state;
}

/** The embedded restate-server: the binary, on this home's data dir. */
function ownServer(home: string, startTime: number | undefined): ExpectedProcess {
  return { startTime, args: ["restate-server", embeddedPaths(home).data] };
}

/**
 * The state file, completed with what runs for this home though the file does not know it (deleted,
 * corrupt, or lost by a command that died while writing it): restate-server on our data dir, and
 * the endpoint that accepts our identity key. Without this, a new server could not open the data
 * dir the old one holds, and `server stop` would not know what to stop.
 */
export function liveEmbeddedState(
  home: string,
  secretNames: readonly string[] = [],
): EmbeddedState {
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
  const endpoint = identityKey && findRunningEndpoint(identityKey, secretNames);
  if (endpoint) state.endpoint = endpoint;
  return state;
}

function writeEmbeddedState(home: string, state: EmbeddedState): void {
  writeStateFile(embeddedPaths(home).state, state);
}

/** Only one command at a time starts or stops the embedded server and endpoint. */
function withLock<T>(home: string, fn: () => Promise<T>): Promise<T> {
  return withStateLock(home, path.join(home, "runtime.lock"), fn);
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
    const state = liveEmbeddedState(options.home, Object.keys(options.secretEnv ?? {}));
    makePrivateDir(paths.logs);
    const identityKey = ensureIdentityKey(paths.identityKey);
    const spec = endpointSpec(options, identityKey, paths.endpointLog);
    // Remembered as soon as it is spawned: `server stop` finds it even if this command dies now.
    const record = (endpoint: EndpointRecord) => {
      state.endpoint = endpoint;
      writeEmbeddedState(options.home, state);
    };
    let restarted = false;
    let moved = false;
    let serverReady = Promise.resolve();
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
        const next = await startEndpoint({
          ...spec,
          previousPort: previous.port,
          onSpawned: record,
        });
        await moveDeploymentsWhileIdle(serverOptions, previous.port, next.port);
        moved = true;
      }
      const child = spawnServer({ ...serverOptions, detached: true });
      serverReady = waitForServer(targets, 30_000, child).then(
        () => {
          state.server = {
            pid: child.pid!,
            startTime: processStartTime(child.pid!),
            startedAt: new Date().toISOString(),
          };
          writeEmbeddedState(options.home, state);
        },
        (error: unknown) => {
          const free = freeBytes(paths.data);
          if (free >= MIN_FREE_BYTES) throw error;
          throw new UnavailableError(
            `restate-server could not start: the disk of ${paths.data} is full (${Math.floor(free / 1024 / 1024)} MiB free); free space and try again (log: ${paths.serverLog})`,
            { cause: error },
          );
        },
      );
      restarted = true;
    }
    const admin = targets.admin;
    const previousPort = state.endpoint?.port;
    // The endpoint starts while restate-server does (each takes a few hundred ms, mostly its own
    // start-up): it needs the server only to be registered, below.
    const [, { endpoint, started }] = await both(
      serverReady,
      ensureEndpoint(spec, {
        current: state.endpoint,
        port: previousPort,
        admin,
        owner: { name: "the running pagent endpoint", stop: "pagent server stop" },
        record,
        ...(options.notice ? { notice: options.notice } : {}),
      }),
    );
    if (started) {
      await retryAdmin(() => registerEndpoint(admin, endpoint.port, previousPort));
      restarted = true;
    } else if (moved) {
      // The moved deployment kept the old endpoint's services; the new endpoint's replace them.
      await retryAdmin(() => registerEndpoint(admin, endpoint.port, undefined));
    }
    if (restarted) await retryAdmin(() => resumeStuckInvocations(admin));
    return state as EmbeddedState & Required<Pick<EmbeddedState, "server" | "endpoint">>;
  });
}

/**
 * Both results, once both have settled (neither goes on unobserved, e.g. recording a process after
 * the lock is released); the first one's failure, else the second one's, is thrown.
 */
async function both<A, B>(a: Promise<A>, b: Promise<B>): Promise<[A, B]> {
  const [first, second] = await Promise.allSettled([a, b]);
  if (first.status === "rejected") throw first.reason;
  if (second.status === "rejected") throw second.reason;
  return [first.value, second.value];
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
  try {
    await retryWhileUnavailable(
      async () => {
        if (!(await admin.healthy(500))) {
          throw new UnavailableError("restate-server did not answer while moving the endpoint");
        }
        await admin.moveDeployments(`http://127.0.0.1:${fromPort}`, `http://127.0.0.1:${toPort}`);
      },
      { timeoutMs: 30_000 },
      {
        beforeRetry: () =>
          child.exitCode === null
            ? Promise.resolve()
            : Promise.reject(
                new UnavailableError(
                  `restate-server exited with code ${child.exitCode} while moving the endpoint; see ${server.logFile}`,
                ),
              ),
        pauseMs: 100,
      },
    );
  } finally {
    const exited = new Promise((r) => child.once("exit", r));
    if (child.exitCode === null) {
      await stopProcess(child.pid!, 5000);
      await exited;
    }
  }
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
    // The endpoint (loading pagent's services) comes up while the server starts, as embedded.
    const hosted = hostEndpoint({
      port: 0,
      host: "127.0.0.1",
      apiKey: options.apiKey,
      identityKeys: [identityKey],
      env: options.secretEnv ?? {},
      silent: true,
      grants: fixedGrants(mergeGrants(emptyGrants(), options.grants ?? {})),
    }).then((endpoint) => {
      cleanups.push(() => endpoint.close());
      return endpoint;
    });
    const [, endpoint] = await both(waitForServer(targets, 30_000, child), hosted);
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
export function withRecovery<T>(
  runtime: Pick<Runtime, "recover">,
  op: () => Promise<T>,
  timeoutMs = 30_000,
): Promise<T> {
  return retryWhileUnavailable(
    op,
    { timeoutMs },
    // A recovery that fails now (a cluster node still starting) may succeed on a later try.
    { beforeRetry: () => runtime.recover().catch(() => undefined), pauseMs: 200 },
  );
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
