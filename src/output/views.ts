import path from "node:path";
import { formatDuration } from "../../services/duration.js";
import { addUsage, ZERO_USAGE, type JobStatus } from "../../services/types.js";
import type { JobStatusReport, JobSummary, TaskStatus } from "../jobs/manage.js";
import type { ClusterStatus, ClusterUpResult } from "../restate/cluster.js";
import { serverHealth, type ServerStatus } from "../restate/health.js";
import { short } from "./human.js";
import type { View } from "./types.js";

/**
 * What each command other than a job run shows, as data for every output mode (see README
 * "Output"). Pure: the tests feed them fixed objects.
 */

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? "").length)));
  return (
    rows
      .map((r) =>
        r
          .map((cell, i) => cell.padEnd(widths[i]!))
          .join("  ")
          .trimEnd(),
      )
      .join("\n") + "\n"
  );
}

const text = (lines: string[]) => lines.map((line) => `${line}\n`).join("");

/** `pagent jobs`: a table; `--ndjson` a job a line; `--quiet` the ids. */
export function jobsView(jobs: JobSummary[]): View {
  return {
    json: jobs,
    ndjson: jobs,
    quiet: jobs.map((j) => j.job),
    human:
      jobs.length === 0
        ? "no jobs\n"
        : table([
            ["JOB", "KIND", "STATUS", "AGE", "DONE/FAILED/TOTAL", "INPUT"],
            ...jobs.map((j) => [
              j.job,
              j.kind,
              j.status,
              formatDuration(j.ageMs, "age"),
              `${j.tasks.done}/${j.tasks.failed}/${j.tasks.total}`,
              j.input,
            ]),
          ]),
  };
}

/**
 * A long input's map tasks as one row per analysis (hundreds of chunk rows say less than one line
 * of counts): attempts, time and tokens summed, the first error.
 */
function statusRows(tasks: TaskStatus[]): TaskStatus[] {
  const rows: TaskStatus[] = [];
  const maps = new Map<string, { row: TaskStatus; chunks: TaskStatus[] }>();
  for (const task of tasks) {
    if (task.chunk === undefined) {
      rows.push(task);
      continue;
    }
    let map = maps.get(task.name);
    if (!map) {
      map = { row: { ...task, name: "" }, chunks: [] };
      maps.set(task.name, map);
      rows.push(map.row);
    }
    map.chunks.push(task);
  }
  // The analysis's own task, after its chunks, is its reduce.
  for (const row of rows)
    if (row.chunk === undefined && maps.has(row.name)) row.name = `${row.name}: reduce`;
  for (const [name, { row, chunks }] of maps) {
    const count = (state: string) => chunks.filter((c) => c.state === state).length;
    const sum = (values: (number | null)[]) =>
      values.some((v) => v !== null) ? values.reduce<number>((a, v) => a + (v ?? 0), 0) : null;
    const reused = chunks.filter((c) => c.reused).length;
    Object.assign(row, {
      name: `${name}: ${chunks.length} chunks`,
      state: [
        `${count("done")}/${chunks.length} done`,
        reused > 0 ? `${reused} reused` : "",
        ...["running", "queued", "failed", "cancelled"].map((s) =>
          count(s) > 0 ? `${count(s)} ${s}` : "",
        ),
      ]
        .filter(Boolean)
        .join(", "),
      attempts: sum(chunks.map((c) => c.attempts)),
      ms: sum(chunks.map((c) => c.ms)),
      usage: chunks.some((c) => c.usage)
        ? chunks.reduce((total, c) => addUsage(total, c.usage ?? undefined), ZERO_USAGE)
        : null,
      lastError: chunks.find((c) => c.lastError)?.lastError ?? null,
    });
  }
  return rows;
}

/** `pagent status JOB`: the report; `--ndjson` the report on one line; `--quiet` the status word. */
export function statusView(report: JobStatusReport): View {
  const head = `job ${report.job} · ${report.kind} · ${report.status} · input ${report.input} · started ${report.createdAt}\n`;
  const tasks =
    report.tasks.length > 0
      ? table([
          ["TASK", "KIND", "STATE", "ATTEMPTS", "TIME", "TOKENS", "LAST ERROR"],
          ...statusRows(report.tasks).map((t) => [
            t.args !== undefined ? `${t.name} ${short(t.args, 50)}` : t.name,
            t.kind,
            t.state,
            t.attempts === null ? "-" : String(t.attempts),
            t.ms === null ? "-" : formatDuration(t.ms),
            t.usage ? String(t.usage.total) : "-",
            t.lastError ?? "",
          ]),
        ])
      : "";
  const children = report.children
    ? table([
        ["INPUT", "JOB", "STATE", "ERROR"],
        ...report.children.map((c) => [c.input, c.job ?? "-", c.state, c.error?.message ?? ""]),
      ])
    : "";
  return { json: report, quiet: [report.status], human: head + tasks + children };
}

/** `pagent cancel JOB`: `--quiet` the job's status after the cancel (`cancelled`, or how it ended). */
export function cancelView(job: string, status: JobStatus): View {
  return {
    json: { job, status },
    quiet: [status],
    human:
      status === "cancelled"
        ? `cancelled job ${job}\n`
        : `job ${job} had already ended: ${status}\n`,
  };
}

/** `pagent server status|start`: `--quiet` one word, healthy, unhealthy or stopped. */
export function serverStatusView(status: ServerStatus): View {
  const s = status.server;
  const e = status.endpoint;
  const health = (running: boolean, healthy: boolean) =>
    healthy ? "healthy" : running ? "unhealthy" : "stopped";
  return {
    json: status,
    quiet: [serverHealth(status)],
    human: text(
      [
        `restate-server  ${health(s.running, s.healthy)}${s.pid ? `  pid ${s.pid}` : ""}${s.version ? `  v${s.version}` : ""}`,
        `  sockets ${path.dirname(s.sockets.admin)}/{ingress,admin,fabric}.sock (no TCP port)`,
        `endpoint        ${health(e.running, e.healthy)}${e.pid ? `  pid ${e.pid}` : ""}${e.port ? `  http://127.0.0.1:${e.port}` : ""}${e.version ? `  pagent v${e.version}` : ""}`,
        `running jobs    ${status.runningJobs ?? "-"}`,
        `data dir        ${status.dataDir}`,
        `logs            ${status.logs}`,
        status.ui ? `Restate UI      run \`${status.ui}\`` : "",
        status.disk ? `disk            ${status.disk.message}` : "",
      ].filter(Boolean),
    ),
  };
}

/** `pagent server stop` and `cluster down`: `--quiet` what was stopped, one a line. */
export function stoppedView(result: { stopped: string[]; purged?: boolean }, sep: string): View {
  return {
    json: result,
    quiet: result.stopped,
    human: text([
      result.stopped.length > 0 ? `stopped ${result.stopped.join(sep)}` : "nothing was running",
      ...(result.purged ? ["deleted the cluster's data"] : []),
    ]),
  };
}

function clusterLines(status: ClusterStatus): string[] {
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

/** `--quiet` of the cluster commands: healthy, unhealthy, or none when there is no cluster. */
function clusterWord(status: ClusterStatus): string {
  return !status.exists ? "none" : status.healthy ? "healthy" : "unhealthy";
}

/** `pagent cluster status`. */
export function clusterStatusView(status: ClusterStatus): View {
  return { json: status, quiet: [clusterWord(status)], human: text(clusterLines(status)) };
}

/** `pagent cluster up`: what it started and how long the cluster took, then its status. */
export function clusterUpView(result: ClusterUpResult, status: ClusterStatus): View {
  return {
    json: { ...result, ...status },
    quiet: [clusterWord(status)],
    human: text([
      result.started.length > 0
        ? `started ${result.started.join(", ")}; every partition led by a live node after ${formatDuration(result.readyMs)}, leaders settled after ${formatDuration(result.settledMs)}`
        : "every node was running",
      ...clusterLines(status),
    ]),
  };
}

/** `pagent ui`: the one-time link, in every mode. */
export function uiView(url: string): View {
  return { json: { url }, quiet: [url], human: `${url}\n` };
}

/**
 * `pagent serve`, once it listens (and is registered): people read that on stderr as it happens,
 * so human mode prints nothing more; `--quiet` prints the endpoint's URL.
 */
export function serveView(endpoint: {
  url: string;
  pid: number;
  registeredWith: string | null;
}): View {
  return { json: endpoint, quiet: [endpoint.url], human: "" };
}
