import { spawn, type ChildProcess } from "node:child_process";
import { closeSync, mkdirSync, openSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import net from "node:net";
import path from "node:path";
import { UnavailableError, UsageError } from "../errors.js";
import { AdminClient } from "./admin.js";
import { IDENTITY_KEY_ENV } from "./identity.js";
import { tcpTarget, unixTarget, type HttpTarget } from "./transport.js";

/** Ports of one restate-server; all bound to the loopback address unless told otherwise. */
export interface ServerPorts {
  ingress: number;
  admin: number;
  node: number;
}

export interface ServerOptions {
  dataDir: string;
  /**
   * TCP ports on `host` (loopback unless told otherwise). Without them the server listens only on
   * unix sockets in its node directory ({@link serverSockets}): nobody but the data dir's owner
   * reaches it.
   */
  ports?: ServerPorts;
  host?: string;
  /** Where the server's output goes; `inherit`-less, so a detached server outlives its parent. */
  logFile: string;
  detached: boolean;
  /** Few partitions start faster and idle smaller; one machine needs no more. */
  partitions?: number;
  /** ed25519 private key (PEM) the server signs its requests to endpoints with. */
  identityKeyFile?: string;
  /** restate-server's temporary directory (its `invoker-*` dirs); the caller's TMPDIR if unset. */
  tmpDir?: string;
  /** Only these roles (e.g. no `worker`, so no invocation runs); all of them if unset. */
  roles?: string[];
}

/** The node name of a server pagent starts alone; its data and sockets live in `<dataDir>/pagent/`. */
const NODE_NAME = "pagent";

/** The unix sockets of a server started without ports. */
export function serverSockets(dataDir: string): ServerSockets {
  const dir = path.join(dataDir, NODE_NAME);
  return {
    ingress: path.join(dir, "ingress.sock"),
    admin: path.join(dir, "admin.sock"),
    node: path.join(dir, "fabric.sock"),
  };
}

export interface ServerSockets {
  ingress: string;
  admin: string;
  node: string;
}

/** sun_path holds 108 bytes on Linux (104 on macOS); a longer socket path cannot be bound. */
const MAX_SOCKET_PATH = 103;

/** Refuses a socket path the kernel could not bind, with what to do about it. */
export function checkSocketPath(socket: string): void {
  const bytes = Buffer.byteLength(socket);
  if (bytes > MAX_SOCKET_PATH) {
    throw new UsageError(
      `the path ${socket} is too long for a unix socket (${bytes} bytes, at most ${MAX_SOCKET_PATH}); set PAGENT_HOME (or TMPDIR for --ephemeral) to a shorter directory`,
    );
  }
}

export function checkSocketPaths(dataDir: string): void {
  checkSocketPath(serverSockets(dataDir).ingress);
}

/** How the CLI reaches a server: its admin API and its ingress. */
export interface ServerTargets {
  admin: AdminClient;
  ingress: HttpTarget;
}

export function socketTargets(dataDir: string, adminTimeoutMs?: number): ServerTargets {
  const sockets = serverSockets(dataDir);
  return {
    admin: new AdminClient(unixTarget(sockets.admin), adminTimeoutMs),
    ingress: unixTarget(sockets.ingress),
  };
}

export function tcpTargets(ports: ServerPorts, host = "127.0.0.1"): ServerTargets {
  const { adminUrl, ingressUrl } = urlsOf(ports, host);
  return { admin: new AdminClient(adminUrl), ingress: tcpTarget(ingressUrl) };
}

/** The real binary shipped by the `@restatedev/restate-server` npm package for this platform. */
export function restateBinary(): string {
  const require = createRequire(import.meta.url);
  const pkg = `@restatedev/restate-server-${process.platform}-${process.arch}`;
  try {
    return require.resolve(`${pkg}/bin/restate-server`);
  } catch {
    throw new UnavailableError(
      `restate-server is not installed for ${process.platform}-${process.arch} (${pkg}); reinstall pagent with optional dependencies, or use --restate-url`,
    );
  }
}

export async function freePort(host = "127.0.0.1"): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.once("error", reject);
    server.listen(0, host, () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

export async function portIsFree(port: number, host = "127.0.0.1"): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.unref();
    server.once("error", () => resolve(false));
    server.listen(port, host, () => server.close(() => resolve(true)));
  });
}

export async function freePorts(host = "127.0.0.1"): Promise<ServerPorts> {
  return { ingress: await freePort(host), admin: await freePort(host), node: await freePort(host) };
}

export function urlsOf(ports: ServerPorts, host = "127.0.0.1") {
  return {
    ingressUrl: `http://${host}:${ports.ingress}`,
    adminUrl: `http://${host}:${ports.admin}`,
  };
}

/** Starts restate-server; the caller waits for {@link waitForServer}. */
export function spawnServer(options: ServerOptions): ChildProcess {
  const host = options.host ?? "127.0.0.1";
  mkdirSync(options.dataDir, { recursive: true, mode: 0o700 });
  const log = openSync(options.logFile, "a", 0o600);
  // The server needs no model credentials; keep them out of its environment and its logs.
  const { OPENAI_API_KEY: _key, ...env } = process.env;
  const listen = options.ports
    ? ["--listen-mode", "tcp", "--bind-ip", host, "--bind-port", String(options.ports.node)]
    : ["--listen-mode", "unix"];
  const child = spawn(
    restateBinary(),
    [
      "--no-logo",
      ...listen,
      "--base-dir",
      options.dataDir,
      "--node-name",
      NODE_NAME,
      ...(options.roles ? [`--roles=${options.roles.join(",")}`] : []),
    ],
    {
      detached: options.detached,
      stdio: ["ignore", log, log],
      env: {
        ...env,
        ...(options.ports
          ? {
              RESTATE_INGRESS__BIND_ADDRESS: `${host}:${options.ports.ingress}`,
              RESTATE_ADMIN__BIND_ADDRESS: `${host}:${options.ports.admin}`,
            }
          : {}),
        ...(options.identityKeyFile ? { [IDENTITY_KEY_ENV]: options.identityKeyFile } : {}),
        ...(options.tmpDir ? { TMPDIR: options.tmpDir } : {}),
        RESTATE_DEFAULT_NUM_PARTITIONS: String(options.partitions ?? 2),
        // RocksDB's default budget is sized for a server box (2 GiB); one user's CLI needs little, and
        // a smaller budget keeps the idle server ~20 MB smaller (bench scenario 6).
        RESTATE_ROCKSDB_TOTAL_MEMORY_SIZE: "128 MiB",
        RESTATE_LOG_FORMAT: "compact",
      },
    },
  );
  closeSync(log);
  if (options.detached) child.unref();
  return child;
}

/**
 * Waits until the admin API answers, the ingress accepts requests and introspection queries work:
 * after an unclean stop the health endpoints answer before the partitions have leaders again.
 */
export async function waitForServer(
  { admin, ingress }: ServerTargets,
  timeoutMs = 30_000,
  child?: ChildProcess,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child && child.exitCode !== null) {
      throw new UnavailableError(
        `restate-server exited with code ${child.exitCode} while starting`,
      );
    }
    if (await admin.healthy(500)) {
      try {
        const res = await ingress.fetch(`${ingress.url}/restate/health`, {
          signal: AbortSignal.timeout(500),
        });
        if (res.ok && (await admin.queryable(1000))) return;
      } catch {
        // not yet listening
      }
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new UnavailableError(`restate-server did not become healthy within ${timeoutMs} ms`);
}

export function isAlive(pid: number | undefined): boolean {
  if (!pid) return false;
  try {
    process.kill(pid, 0);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "EPERM") return false;
  }
  // A killed process that nobody has reaped yet still answers kill(pid, 0): on Linux, ask /proc.
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) !== "Z";
  } catch {
    return true;
  }
}

/** When Linux started `pid` (clock ticks after boot, field 22 of /proc/PID/stat); unknown elsewhere. */
export function processStartTime(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // Fields after the command name, which may itself hold spaces and parentheses; field 3 is first.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return Number(fields[22 - 3]);
  } catch {
    return undefined;
  }
}

/** What a remembered pid must still be: see {@link verifyOwnProcess}. */
export interface ExpectedProcess {
  /** {@link processStartTime} recorded at spawn; absent in state files written before it was. */
  startTime?: number;
  /** Each equals an argument of the process, or ends one after a "/" (an executable or script path). */
  args: string[];
}

/**
 * Whether `pid` is still the process pagent started: alive, started at the recorded time, with
 * its executable and distinguishing arguments. After a reboot or from a stale state file a pid may
 * belong to any other program; such a pid is treated as not running and is never signalled.
 */
export function verifyOwnProcess(pid: number | undefined, expected: ExpectedProcess): boolean {
  if (!pid || !isAlive(pid)) return false;
  let argv: string[];
  try {
    argv = readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0");
  } catch {
    // No /proc (not Linux): nothing more to check.
    return true;
  }
  if (expected.startTime !== undefined && processStartTime(pid) !== expected.startTime)
    return false;
  return expected.args.every((arg) => argv.some((a) => a === arg || a.endsWith(`/${arg}`)));
}

/**
 * SIGTERM, then SIGKILL after the grace period; resolves once the process is gone. The SIGKILL goes
 * only to the process the SIGTERM went to: if it exited meanwhile and its pid was reused, it is not sent.
 */
export async function stopProcess(pid: number, graceMs = 10_000): Promise<void> {
  if (!isAlive(pid)) return;
  const startTime = processStartTime(pid);
  try {
    process.kill(pid, "SIGTERM");
  } catch {
    return;
  }
  const deadline = Date.now() + graceMs;
  while (Date.now() < deadline) {
    if (!isAlive(pid)) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  if (processStartTime(pid) !== startTime) return;
  try {
    process.kill(pid, "SIGKILL");
  } catch {
    return;
  }
  while (isAlive(pid)) await new Promise((r) => setTimeout(r, 20));
}
