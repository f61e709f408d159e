import type { Command } from "commander";
import { parsePositiveInt } from "../config.js";
import { commandContext, type App, type CommandContext } from "../context.js";
import { EXIT, UsageError } from "../errors.js";
import { embeddedPaths } from "../restate/runtime.js";
import { startUiProxy } from "../restate/ui-proxy.js";
import { uiView } from "../output/views.js";
import { startEmbedded } from "./server.js";

/** The admin socket whose UI to serve: the embedded server's (started if needed), or a connected one's. */
async function socketToServe(ctx: CommandContext): Promise<string> {
  if (ctx.config.mode === "connect") {
    const admin = ctx.config.adminUrls[0] ?? "";
    if (!admin.startsWith("unix:")) {
      throw new UsageError(
        "a server reached over the network serves its own UI: open <admin URL>/ui (pass a unix:/…/admin.sock --admin-url to serve a local cluster's)",
      );
    }
    return admin.slice("unix:".length);
  }
  await startEmbedded(ctx);
  return embeddedPaths(ctx.config.home).sockets.admin;
}

export function registerUi(program: Command, app: App): void {
  program
    .command("ui")
    .argument("[invocation]", "open the UI at this invocation (inv_…, as printed at a job's end)")
    .description(
      "serve the Restate UI of the embedded server (or of a unix:/ --admin-url, e.g. the local cluster) on 127.0.0.1 behind a one-time link, until Ctrl-C",
    )
    .option("--port <n>", "port to serve on (default: a free one)")
    .action(async (invocation: string | undefined, flags: { port?: string }, command: Command) => {
      const ctx = commandContext(app, command.optsWithGlobals());
      if (ctx.config.mode === "ephemeral") {
        throw new UsageError("an --ephemeral server ends with its command; it has no UI to open");
      }
      const port = flags.port ? parsePositiveInt(flags.port, "--port") : undefined;
      const adminSocket = await socketToServe(ctx);
      const proxy = await startUiProxy({
        adminSocket,
        ...(port !== undefined ? { port } : {}),
        startPath: invocation ? `/ui/invocations/${encodeURIComponent(invocation)}` : "/ui/",
      });
      app.onExit(() => proxy.close());
      // The link is the result (stdout); how to use it is progress (stderr).
      ctx.reporter.show(uiView(proxy.url));
      ctx.reporter.note(
        "Open this link once in your browser (it is spent by its first use and works for nobody else); Ctrl-C stops serving the UI.",
      );
      await new Promise<void>((resolve) => {
        if (app.signal.aborted) resolve();
        else app.signal.addEventListener("abort", () => resolve(), { once: true });
      });
      app.finish(EXIT.ok);
    });
}
