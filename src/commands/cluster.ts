import type { Command } from "commander";
import { parseDuration, parsePositiveInt } from "../config.js";
import { commandContext, type App } from "../context.js";
import { EXIT, UsageError } from "../errors.js";
import { clusterStatusView, clusterUpView, stoppedView } from "../output/views.js";
import { clusterDown, clusterStatus, clusterUp, type ClusterUpResult } from "../restate/cluster.js";

export function registerCluster(program: Command, app: App): void {
  const cluster = program
    .command("cluster")
    .description(
      "a local Restate cluster on this machine (unix sockets only), for trying pagent on several nodes",
    );
  cluster
    .command("up")
    .description(
      "start the cluster's nodes and its pagent endpoint (only what is missing) and wait until every partition has a live leader",
    )
    .option("--nodes <n>", "number of nodes of a new cluster (default 3)")
    .option("--wait <duration>", "how long to wait for a healthy cluster (default 90s)")
    .action(async (flags: { nodes?: string; wait?: string }, command: Command) => {
      const ctx = commandContext(app, command.optsWithGlobals());
      const nodes = flags.nodes ? parsePositiveInt(flags.nodes, "--nodes") : undefined;
      if (nodes !== undefined && nodes > 9) throw new UsageError("--nodes may be at most 9");
      const result: ClusterUpResult = await clusterUp({
        home: ctx.config.home,
        ...(nodes !== undefined ? { nodes } : {}),
        apiKey: ctx.config.apiKey,
        secretEnv: ctx.config.secretEnv,
        version: app.buildId,
        timeoutMs: flags.wait ? parseDuration(flags.wait, "--wait") : 90_000,
        progress: (line) => ctx.reporter.note(line),
      });
      const status = await clusterStatus(ctx.config.home);
      ctx.reporter.show(clusterUpView(result, status));
      app.finish(status.healthy ? EXIT.ok : EXIT.unavailable);
    });
  cluster
    .command("down")
    .description(
      "stop the endpoint and every node (SIGTERM, then SIGKILL after 10 s); data stays unless --purge",
    )
    .option("--purge", "also delete the cluster's data, configs and logs")
    .action(async (flags: { purge?: boolean }, command: Command) => {
      const ctx = commandContext(app, command.optsWithGlobals());
      const result = await clusterDown(ctx.config.home, { purge: flags.purge ?? false });
      ctx.reporter.show(stoppedView(result, ", "));
      app.finish(EXIT.ok);
    });
  cluster
    .command("status")
    .description(
      "per node: pid, sockets, alive or dead in the cluster's view, partitions led (exit 69 when not healthy)",
    )
    .action(async (_flags: unknown, command: Command) => {
      const ctx = commandContext(app, command.optsWithGlobals());
      const status = await clusterStatus(ctx.config.home);
      ctx.reporter.show(clusterStatusView(status));
      app.finish(status.healthy ? EXIT.ok : EXIT.unavailable);
    });
}
