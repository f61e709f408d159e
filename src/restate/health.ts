import { endpointHealthy, runningInvocations } from "./endpoint-process.js";
import { embeddedPaths, liveEmbeddedState, privateUi } from "./runtime.js";
import { isAlive, socketTargets, type ServerSockets } from "./server.js";
import { diskTrouble, diskTroubleMessage } from "./disk.js";

/** The embedded runtime's health summary, as `pagent server status` and `server start` show it. */
export interface ServerStatus {
  home: string;
  dataDir: string;
  logs: string;
  server: {
    running: boolean;
    healthy: boolean;
    pid: number | null;
    /** Unix sockets in the data dir, the only way in: only this user can enter that directory. */
    sockets: ServerSockets;
    version: string | null;
  };
  endpoint: {
    running: boolean;
    healthy: boolean;
    pid: number | null;
    port: number | null;
    version: string | null;
  };
  runningJobs: number | null;
  /** The command that opens the Restate UI (served privately on loopback, behind a one-time token). */
  ui: string | null;
  /** Set when restate-server has hit a full disk since it started: not healthy then. */
  disk: { full: boolean; freeBytes: number; message: string; log: string } | null;
}

/** Reads the embedded runtime's processes and asks each whether it is healthy. */
export async function serverStatus(home: string): Promise<ServerStatus> {
  const state = liveEmbeddedState(home);
  const paths = embeddedPaths(home);
  const serverRunning = isAlive(state.server?.pid);
  const { admin } = socketTargets(paths.data, 2000);
  const serverHealthy = serverRunning ? await admin.healthy() : false;
  const endpointRunning = isAlive(state.endpoint?.pid);
  const trouble = serverRunning ? diskTrouble(paths, state.server?.startedAt) : undefined;
  return {
    home,
    dataDir: paths.data,
    logs: paths.logs,
    server: {
      running: serverRunning,
      healthy: serverHealthy,
      pid: serverRunning ? state.server!.pid : null,
      sockets: paths.sockets,
      version: serverHealthy ? ((await admin.version()) ?? null) : null,
    },
    endpoint: {
      running: endpointRunning,
      healthy:
        endpointRunning && state.endpoint ? await endpointHealthy(state.endpoint.port) : false,
      pid: endpointRunning ? state.endpoint!.pid : null,
      port: state.endpoint?.port ?? null,
      version: state.endpoint?.version ?? null,
    },
    // A server with a partition down (a full disk) answers health checks but not every query.
    runningJobs: serverHealthy ? await runningInvocations(admin).catch(() => null) : null,
    ui: serverRunning ? privateUi() : null,
    disk: trouble
      ? {
          full: !trouble.spaceBack,
          freeBytes: trouble.freeBytes,
          message: diskTroubleMessage(trouble),
          log: trouble.log,
        }
      : null,
  };
}

/** One word for the whole: `healthy` only when the server and endpoint answer and the disk is fine. */
export function serverHealth(status: ServerStatus): "healthy" | "unhealthy" | "stopped" {
  if (status.server.healthy && status.endpoint.healthy && !status.disk) return "healthy";
  return status.server.running || status.endpoint.running ? "unhealthy" : "stopped";
}
