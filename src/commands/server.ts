import type { Command } from "commander";
import { commandContext, type App, type CommandContext } from "../context.js";
import { EXIT, UsageError } from "../errors.js";
import { serverStatusView, stoppedView } from "../output/views.js";
import { serverHealth, serverStatus } from "../restate/health.js";
import { ensureEmbedded, stopEmbedded } from "../restate/runtime.js";

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
      ctx.reporter.show(serverStatusView(await serverStatus(ctx.config.home)));
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
      ctx.reporter.show(stoppedView({ stopped }, " and "));
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
      ctx.reporter.show(serverStatusView(status));
      app.finish(serverHealth(status) === "healthy" ? EXIT.ok : EXIT.unavailable);
    });
}
