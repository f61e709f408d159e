/**
 * The `pagent serve` process that pagent starts for the embedded server and for the local cluster:
 * how it is spawned and recognised, when it counts as healthy, and when a running one is replaced
 * (one policy for both, see {@link ensureEndpoint}).
 */
import { createHash } from "node:crypto";
import { spawn } from "node:child_process";
import { closeSync, openSync } from "node:fs";
import http2 from "node:http2";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { UnavailableError } from "../errors.js";
import { grantsPath } from "../grants.js";
import { JOB_SERVICE, SERVICE_NAMES } from "../../services/types.js";
import { sqlString, type AdminClient } from "./admin.js";
import { argValue, findOwnProcesses } from "./processes.js";
import { retryAdmin } from "./retry.js";
import {
  freePort,
  isAlive,
  portIsFree,
  processStartTime,
  stopProcess,
  verifyOwnProcess,
} from "./server.js";

const PACKAGE_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../..");
const CLI_ENTRY = path.join(PACKAGE_ROOT, "bin", "pagent.js");

/** A `pagent serve` pagent started, as runtime.json and cluster.json remember it. */
export interface EndpointRecord {
  /** 0 once it is known not to run (or to be no longer ours). */
  pid: number;
  /** See processStartTime; with the command line it proves a pid is still ours. */
  startTime?: number;
  port: number;
  keyFingerprint: string;
  version: string;
  /** The request identity key it accepts (`publickeyv1_…`). */
  identityKey?: string;
  startedAt: string;
}

/** What the endpoint a command needs is started with. */
export interface EndpointSpec {
  apiKey: string | undefined;
  /** Variables the config's provider profiles and headers name (keys among them). */
  secretEnv?: Record<string, string>;
  /** The only request identity the endpoint accepts: its Restate's (`publickeyv1_…`). */
  identityKey: string;
  logFile: string;
  /** The user's grants file (src/grants.ts), which the endpoint reads again whenever it changes. */
  grantsFile: string;
  version: string;
}

/** What a command that needs pagent's own endpoint knows: its home, the keys, this pagent's build. */
export interface EndpointSettings {
  /** $PAGENT_HOME, where the grants file lives. */
  home: string;
  apiKey?: string;
  /** Other variables the endpoint reads for jobs (profiles' keys, `${VAR}` of headers), by name. */
  secretEnv?: Record<string, string>;
  version: string;
}

/** The endpoint those settings ask for, accepting `identityKey` and logging to `logFile`. */
export function endpointSpec(
  settings: EndpointSettings,
  identityKey: string,
  logFile: string,
): EndpointSpec {
  return {
    apiKey: settings.apiKey,
    ...(settings.secretEnv ? { secretEnv: settings.secretEnv } : {}),
    identityKey,
    logFile,
    grantsFile: grantsPath(settings.home),
    version: settings.version,
  };
}

/** Set on the endpoint pagent spawns: its build id, so an endpoint found without the state file is known. */
const ENDPOINT_BUILD_ENV = "PAGENT_ENDPOINT_BUILD";

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

/** Sets the record's pid to 0 when that pid is no longer the `pagent serve` pagent started. */
export function forgetIfNotOurs(endpoint: EndpointRecord | undefined): void {
  const ours = { startTime: endpoint?.startTime, args: ["pagent.js", "serve"] };
  if (endpoint && !verifyOwnProcess(endpoint.pid, ours)) endpoint.pid = 0;
}

/**
 * The endpoint that accepts `identityKey`, found running though no state file knows it: only an
 * endpoint pagent started for that key carries it on its command line.
 */
export function findRunningEndpoint(
  identityKey: string,
  secretNames: readonly string[] = [],
): EndpointRecord | undefined {
  const [endpoint] = findOwnProcesses(
    (argv) => argv.includes("serve") && argValue(argv, "--identity-key") === identityKey,
  );
  const port = Number(endpoint && argValue(endpoint.argv, "--port"));
  if (!endpoint || !(port > 0)) return undefined;
  return {
    pid: endpoint.pid,
    port,
    // Over the variables this command would start it with, so an endpoint started with the same
    // ones is recognised as current rather than restarted.
    keyFingerprint: keyFingerprint(
      endpoint.env.OPENAI_API_KEY,
      Object.fromEntries(
        secretNames.flatMap((name) => {
          const value = endpoint.env[name];
          return value === undefined ? [] : [[name, value]];
        }),
      ),
    ),
    version: endpoint.env[ENDPOINT_BUILD_ENV] ?? "unknown",
    identityKey,
    startedAt: "unknown (found running)",
  };
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
    // Often the last thing a cold start waits for: ask again soon (one local HTTP/2 request).
    await new Promise((r) => setTimeout(r, 20));
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
export async function startEndpoint(
  spec: EndpointSpec & {
    previousPort: number | undefined;
    onSpawned?: (record: EndpointRecord) => void;
  },
): Promise<EndpointRecord> {
  let port = spec.previousPort;
  if (!port || !(await portIsFree(port))) port = await freePort();
  const pid = spawnEndpointProcess(spec, port);
  const record: EndpointRecord = {
    pid,
    startTime: processStartTime(pid),
    port,
    keyFingerprint: keyFingerprint(spec.apiKey, spec.secretEnv),
    version: spec.version,
    identityKey: spec.identityKey,
    startedAt: new Date().toISOString(),
  };
  spec.onSpawned?.(record);
  await waitForEndpoint(port, pid);
  return record;
}

/** Starts `pagent serve` on loopback, detached, logging to `logFile`; returns its pid. */
function spawnEndpointProcess(spec: EndpointSpec, port: number): number {
  const log = openSync(spec.logFile, "a", 0o600);
  // Identity keys of the caller's environment would let another Restate in: ours is the only one.
  const { OPENAI_API_KEY: _inherited, RESTATE_IDENTITY_KEYS: _keys, ...env } = process.env;
  const args = [
    "serve",
    "--host",
    "127.0.0.1",
    "--port",
    String(port),
    // Public, so argv is fine: only requests signed by our restate-server are served.
    "--identity-key",
    spec.identityKey,
    "--grants",
    spec.grantsFile,
  ];
  const child = spawn(process.execPath, [CLI_ENTRY, ...args], {
    detached: true,
    stdio: ["ignore", log, log],
    // Keys reach the endpoint through its environment only: never argv, files or logs.
    env: {
      ...env,
      ...spec.secretEnv,
      ...(spec.apiKey ? { OPENAI_API_KEY: spec.apiKey } : {}),
      [ENDPOINT_BUILD_ENV]: spec.version,
    },
  });
  closeSync(log);
  child.unref();
  return child.pid!;
}

/**
 * Keeps the running endpoint if it answers and was started with this key, secrets, identity key and
 * pagent build; otherwise replaces it, on its port. A stale endpoint that still has running jobs is
 * refused (they would lose their credentials); a hung one is stopped before the new one takes its
 * port. A busy machine may keep one health check waiting, so it is asked twice before counted dead.
 * `record` is called as soon as a new endpoint is spawned, so the state file knows its pid even if
 * this command dies before it answers.
 */
export async function ensureEndpoint(
  spec: EndpointSpec,
  options: {
    current: EndpointRecord | undefined;
    /** Where the endpoint was: Restate pins invocations to that address. */
    port: number | undefined;
    /** Asked how many jobs still run before a stale endpoint is stopped. */
    admin: AdminClient;
    /** Whose endpoint it is and the command that stops it, for the refusal. */
    owner: { name: string; stop: string };
    record: (endpoint: EndpointRecord) => void;
    notice?: (line: string) => void;
  },
): Promise<{ endpoint: EndpointRecord; started: boolean }> {
  const { current } = options;
  const running = current !== undefined && isAlive(current.pid);
  const healthy =
    running &&
    ((await endpointHealthy(current.port, 2000)) || (await endpointHealthy(current.port, 2000)));
  const fingerprint = keyFingerprint(spec.apiKey, spec.secretEnv);
  const stale =
    current !== undefined &&
    (current.keyFingerprint !== fingerprint ||
      current.version !== spec.version ||
      current.identityKey !== spec.identityKey);
  if (healthy && !stale) return { endpoint: current, started: false };
  if (healthy) {
    const busy = await retryAdmin(() => runningInvocations(options.admin));
    if (busy > 0) {
      throw new UnavailableError(
        `${options.owner.name} was started with a different OPENAI_API_KEY (or provider key) or pagent version and ${busy} job(s) are still running on it; wait for them (pagent jobs) or run \`${options.owner.stop}\` first`,
      );
    }
  }
  if (running) await stopProcess(current.pid, 10_000);
  if (healthy) {
    options.notice?.(
      `restarting the background endpoint: it was started ${
        current.keyFingerprint !== fingerprint
          ? "with a different OPENAI_API_KEY"
          : `by another pagent install or build (${current.version}, this is ${spec.version})`
      }`,
    );
  }
  const endpoint = await startEndpoint({
    ...spec,
    previousPort: options.port,
    onSpawned: options.record,
  });
  return { endpoint, started: true };
}
