import type { Command } from "commander";
import { commandContext, type App, type CommandContext } from "../context.js";
import { EXIT, UsageError } from "../errors.js";
import { AdminClient } from "../restate/admin.js";
import {
  embeddedPaths,
  endpointHealthy,
  ensureEmbedded,
  readEmbeddedState,
  runningInvocations,
  stopEmbedded,
} from "../restate/runtime.js";
import { isAlive, urlsOf } from "../restate/server.js";

export interface ServerStatus {
  home: string;
  dataDir: string;
  logs: string;
  server: {
    running: boolean;
    healthy: boolean;
    pid: number | null;
    ports: { ingress: number; admin: number; node: number } | null;
    ingressUrl: string | null;
    adminUrl: string | null;
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
  uiUrl: string | null;
}

/** Reads the embedded runtime's processes and asks each whether it is healthy. */
export async function serverStatus(home: string): Promise<ServerStatus> {
  const state = readEmbeddedState(home);
  const paths = embeddedPaths(home);
  const serverRunning = isAlive(state.server?.pid);
  const urls = state.server ? urlsOf(state.server.ports) : undefined;
  const admin = urls ? new AdminClient(urls.adminUrl, 2000) : undefined;
  const serverHealthy = serverRunning && admin ? await admin.healthy() : false;
  const endpointRunning = isAlive(state.endpoint?.pid);
  return {
    home,
    dataDir: paths.data,
    logs: paths.logs,
    server: {
      running: serverRunning,
      healthy: serverHealthy,
      pid: serverRunning ? state.server!.pid : null,
      ports: state.server?.ports ?? null,
      ingressUrl: urls?.ingressUrl ?? null,
      adminUrl: urls?.adminUrl ?? null,
      version: serverHealthy && admin ? ((await admin.version()) ?? null) : null,
    },
    endpoint: {
      running: endpointRunning,
      healthy:
        endpointRunning && state.endpoint ? await endpointHealthy(state.endpoint.port) : false,
      pid: endpointRunning ? state.endpoint!.pid : null,
      port: state.endpoint?.port ?? null,
      version: state.endpoint?.version ?? null,
    },
    runningJobs: serverHealthy && admin ? await runningInvocations(admin) : null,
    uiUrl: urls ? `${urls.adminUrl}/ui` : null,
  };
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
      s.ports ? `  ingress ${s.ingressUrl}  admin ${s.adminUrl}  node port ${s.ports.node}` : "",
      `endpoint        ${health(e.running, e.healthy)}${e.pid ? `  pid ${e.pid}` : ""}${e.port ? `  http://127.0.0.1:${e.port}` : ""}${e.version ? `  pagent v${e.version}` : ""}`,
      `running jobs    ${status.runningJobs ?? "-"}`,
      `data dir        ${status.dataDir}`,
      `logs            ${status.logs}`,
      status.uiUrl ? `Restate UI      ${status.uiUrl}` : "",
    ]
      .filter(Boolean)
      .join("\n") + "\n",
  );
}

export function registerServer(program: Command, app: App): void {
  const server = program
    .command("server")
    .description("manage the embedded Restate server and pagent endpoint");
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
      await ensureEmbedded({
        mode: "embedded",
        home: ctx.config.home,
        ingressUrls: [],
        adminUrls: [],
        apiKey: ctx.config.apiKey,
        secretEnv: ctx.config.secretEnv,
        version: app.buildId,
      });
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
    .description("pids, ports, data dir, versions, health, running jobs (exit 69 when not healthy)")
    .action(async (_flags: unknown, command: Command) => {
      const ctx = commandContext(app, command.optsWithGlobals());
      embeddedOnly(ctx);
      const status = await serverStatus(ctx.config.home);
      printStatus(ctx, status);
      app.finish(status.server.healthy && status.endpoint.healthy ? EXIT.ok : EXIT.unavailable);
    });
}
