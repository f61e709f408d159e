import type { Command } from "commander";
import { parseDuration, parsePositiveInt } from "../config.js";
import { commandContext, type App, type CommandContext } from "../context.js";
import { EXIT, UsageError } from "../errors.js";
import {
  clusterDown,
  clusterStatus,
  clusterUp,
  type ClusterStatus,
  type ClusterUpResult,
} from "../restate/cluster.js";

function statusLines(status: ClusterStatus): string[] {
  if (!status.exists) return [`no cluster in ${status.dir}; start one with \`pagent cluster up\``];
  const lines = [
    `cluster ${status.clusterName}  ${status.healthy ? "healthy" : "NOT healthy"}  ${status.nodes.length} nodes, ${status.partitions} partitions, replication ${status.replication}`,
  ];
  for (const node of status.nodes) {
    const leads = node.leads.length > 0 ? `  leads ${node.leads.join(",")}` : "";
    lines.push(
      `  ${node.name}  ${node.running ? `pid ${node.pid}` : "stopped"}  cluster: ${node.state}${node.nodeId ? ` (${node.nodeId})` : ""}${leads}`,
      `          ingress ${node.ingressUrl}  admin ${node.adminUrl}  node ${node.nodeUrl}`,
    );
  }
  const e = status.endpoint;
  lines.push(
    `  endpoint  ${e.running ? `pid ${e.pid}` : "stopped"}  ${e.healthy ? "healthy" : "not answering"}  ${e.url ?? ""}`,
  );
  for (const problem of status.problems) lines.push(`  ! ${problem}`);
  if (status.connect) {
    lines.push(
      "Use it with:",
      `  pagent --restate-url ${status.connect.restateUrl} --admin-url ${status.connect.adminUrl} analyze FILE`,
      `  (or RESTATE_INGRESS_URL=${status.connect.restateUrl} RESTATE_ADMIN_URL=${status.connect.adminUrl})`,
    );
  }
  lines.push(`data, configs and logs in ${status.dir}`);
  return lines;
}

function print(ctx: CommandContext, json: unknown, lines: () => string[]): void {
  ctx.app.stdout.write(
    ctx.config.output === "human"
      ? `${lines().join("\n")}\n`
      : `${JSON.stringify(json, null, 2)}\n`,
  );
}

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
      const human = ctx.config.output === "human" && !ctx.config.quiet;
      const result: ClusterUpResult = await clusterUp({
        home: ctx.config.home,
        ...(nodes !== undefined ? { nodes } : {}),
        apiKey: ctx.config.apiKey,
        secretEnv: ctx.config.secretEnv,
        version: app.buildId,
        timeoutMs: flags.wait ? parseDuration(flags.wait, "--wait") : 90_000,
        progress: (line) => {
          if (human) app.stderr.write(`${line}\n`);
        },
      });
      const status = await clusterStatus(ctx.config.home);
      print(ctx, { ...result, ...status }, () => [
        result.started.length > 0
          ? `started ${result.started.join(", ")}; every partition led by a live node after ${(result.readyMs / 1000).toFixed(1)} s, leaders settled after ${(result.settledMs / 1000).toFixed(1)} s`
          : "every node was running",
        ...statusLines(status),
      ]);
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
      print(ctx, result, () => [
        result.stopped.length > 0 ? `stopped ${result.stopped.join(", ")}` : "nothing was running",
        ...(result.purged ? ["deleted the cluster's data"] : []),
      ]);
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
      print(ctx, status, () => statusLines(status));
      app.finish(status.healthy ? EXIT.ok : EXIT.unavailable);
    });
}
