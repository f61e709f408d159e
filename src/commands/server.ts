import path from "node:path";
import type { Command } from "commander";
import { commandContext, type App, type CommandContext } from "../context.js";
import { EXIT, UsageError } from "../errors.js";
import { endpointHealthy, runningInvocations } from "../restate/endpoint-process.js";
import {
  embeddedPaths,
  ensureEmbedded,
  liveEmbeddedState,
  privateUi,
  stopEmbedded,
} from "../restate/runtime.js";
import { isAlive, socketTargets, type ServerSockets } from "../restate/server.js";
import { diskTrouble, diskTroubleMessage } from "../restate/disk.js";

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

/** Starts what is missing of the embedded server and endpoint, with this command's key and build. */
export async function startEmbedded(ctx: CommandContext): Promise<void> {
  await ensureEmbedded({
    mode: "embedded",
    home: ctx.config.home,
    ingressUrls: [],
    adminUrls: [],
    apiKey: ctx.config.apiKey,
    secretEnv: ctx.config.secretEnv,
    version: ctx.app.buildId,
  });
}

function printStatus(ctx: CommandContext, status: ServerStatus): void {
  if (ctx.config.output !== "human") {
    ctx.app.stdout.write(`${JSON.stringify(status, null, 2)}\n`);
    return;
  }
  const s = status.server;
  const e = status.endpoint;
  const health = (running: boolean, healthy: boolean) =>
    healthy ? "healthy" : running ? "unhealthy" : "stopped";
  ctx.app.stdout.write(
    [
      `restate-server  ${health(s.running, s.healthy)}${s.pid ? `  pid ${s.pid}` : ""}${s.version ? `  v${s.version}` : ""}`,
      `  sockets ${path.dirname(s.sockets.admin)}/{ingress,admin,fabric}.sock (no TCP port)`,
      `endpoint        ${health(e.running, e.healthy)}${e.pid ? `  pid ${e.pid}` : ""}${e.port ? `  http://127.0.0.1:${e.port}` : ""}${e.version ? `  pagent v${e.version}` : ""}`,
      `running jobs    ${status.runningJobs ?? "-"}`,
      `data dir        ${status.dataDir}`,
      `logs            ${status.logs}`,
      status.ui ? `Restate UI      run \`${status.ui}\`` : "",
      status.disk ? `disk            ${status.disk.message}` : "",
    ]
      .filter(Boolean)
      .join("\n") + "\n",
  );
}

export function registerServer(program: Command, app: App): void {
  const server = program
    .command("server")
    .description("manage the embedded Restate server and pagent endpoint (--json too)");
  const embeddedOnly = (ctx: CommandContext) => {
    if (ctx.config.mode !== "embedded") {
      throw new UsageError(
        "pagent server manages the embedded server; drop --ephemeral/--restate-url",
      );
    }
  };
  server
    .command("start")
    .description("start the server and endpoint (does nothing if they run)")
    .action(async (_flags: unknown, command: Command) => {
      const ctx = commandContext(app, command.optsWithGlobals());
      embeddedOnly(ctx);
      await startEmbedded(ctx);
      printStatus(ctx, await serverStatus(ctx.config.home));
      app.finish(EXIT.ok);
    });
  server
    .command("stop")
    .description(
      "stop the server and endpoint (SIGTERM, then SIGKILL after a grace period); data stays",
    )
    .action(async (_flags: unknown, command: Command) => {
      const ctx = commandContext(app, command.optsWithGlobals());
      embeddedOnly(ctx);
      const { stopped } = await stopEmbedded(ctx.config.home);
      if (ctx.config.output === "human") {
        app.stdout.write(
          stopped.length > 0 ? `stopped ${stopped.join(" and ")}\n` : "nothing was running\n",
        );
      } else {
        app.stdout.write(`${JSON.stringify({ stopped })}\n`);
      }
      app.finish(EXIT.ok);
    });
  server
    .command("status")
    .description(
      "pids, sockets, endpoint port, data dir, versions, health, running jobs, how to open the UI (exit 69 when not healthy)",
    )
    .action(async (_flags: unknown, command: Command) => {
      const ctx = commandContext(app, command.optsWithGlobals());
      embeddedOnly(ctx);
      const status = await serverStatus(ctx.config.home);
      printStatus(ctx, status);
      app.finish(
        status.server.healthy && status.endpoint.healthy && !status.disk
          ? EXIT.ok
          : EXIT.unavailable,
      );
    });
}
