import type { JobStatus, JobView, TaskView, Usage } from "../../services/types.js";
import { JOB_SERVICE } from "../../services/types.js";
import { EXIT, PagentError } from "../errors.js";
import { sqlString, type AdminClient } from "../restate/admin.js";
import { attemptOf, failureLine } from "./progress.js";
import { readInvocations, readViews } from "./watch.js";

/** One row of `pagent jobs`. */
export interface JobSummary {
  job: string;
  kind: JobView["kind"];
  status: JobStatus;
  input: string;
  createdAt: string;
  ageMs: number;
  tasks: { done: number; failed: number; total: number };
}

export const STATUS_FILTERS = ["running", "done", "failed", "partial", "cancelled"] as const;
export type StatusFilter = (typeof STATUS_FILTERS)[number];

const FILTERS: Record<StatusFilter, JobStatus[]> = {
  running: ["running"],
  done: ["done"],
  failed: ["failed", "partial", "cancelled"],
  partial: ["partial"],
  cancelled: ["cancelled"],
};

function counts(view: JobView): JobSummary["tasks"] {
  const items: { state: string }[] = view.kind === "batch" ? (view.children ?? []) : view.tasks;
  return {
    done: items.filter((t) => t.state === "done").length,
    failed: items.filter((t) => t.state === "failed" || t.state === "cancelled").length,
    total: items.length,
  };
}

/** Recent jobs, newest first, from the job views in Restate's state. */
export async function listJobs(
  admin: AdminClient,
  options: { status?: StatusFilter; limit: number; now?: number },
): Promise<JobSummary[]> {
  const views = await readViews(admin);
  const now = options.now ?? Date.now();
  return [...views.values()]
    .filter((view) => !options.status || FILTERS[options.status].includes(view.status))
    .sort((a, b) => b.createdAt - a.createdAt)
    .slice(0, options.limit)
    .map((view) => ({
      job: view.job,
      kind: view.kind,
      status: view.status,
      input: view.input,
      createdAt: new Date(view.createdAt).toISOString(),
      ageMs: now - view.createdAt,
      tasks: counts(view),
    }));
}

export async function requireView(admin: AdminClient, job: string): Promise<JobView> {
  const view = (await readViews(admin, [job])).get(job);
  if (!view) {
    throw new PagentError(
      `no job ${job} in Restate; it may have expired (see --retention) or the id is wrong: list jobs with \`pagent jobs\``,
      EXIT.usage,
    );
  }
  return view;
}

/** One row of `pagent status JOB`. */
export interface TaskStatus {
  task: string;
  name: string;
  kind: TaskView["kind"];
  /** A tool call's arguments. */
  args?: unknown;
  /** A long input's map task: its chunk's index (from 0). */
  chunk?: number;
  /** A map task answered from an earlier job's result. */
  reused?: true;
  state: string;
  attempts: number | null;
  lastError: string | null;
  ms: number | null;
  usage: Usage | null;
}

export interface JobStatusReport {
  job: string;
  kind: JobView["kind"];
  status: JobStatus;
  input: string;
  createdAt: string;
  finishedAt: string | null;
  invocationId: string;
  tasks: TaskStatus[];
  children?: JobView["children"];
}

export async function jobStatus(admin: AdminClient, job: string): Promise<JobStatusReport> {
  const view = await requireView(admin, job);
  const ids = view.tasks.flatMap((t) => (t.invocationId ? [t.invocationId] : []));
  const invocations = await readInvocations(admin, ids);
  return {
    job: view.job,
    kind: view.kind,
    status: view.status,
    input: view.input,
    createdAt: new Date(view.createdAt).toISOString(),
    finishedAt: view.finishedAt ? new Date(view.finishedAt).toISOString() : null,
    invocationId: view.invocationId,
    tasks: view.tasks.map((task) => {
      const row = task.invocationId ? invocations.get(task.invocationId) : undefined;
      return {
        task: task.id,
        name: task.name,
        kind: task.kind,
        ...(task.args !== undefined ? { args: task.args } : {}),
        ...(task.chunk !== undefined ? { chunk: task.chunk } : {}),
        ...(task.reused ? { reused: task.reused } : {}),
        state: task.state,
        // Live while the task runs; once it finished, what the job recorded from its result.
        attempts:
          task.state === "running" && row?.retry_count !== undefined
            ? attemptOf(row, view.maxAttempts)
            : (task.attempts ?? null),
        lastError: task.error?.message ?? failureLine(row?.last_failure) ?? null,
        ms: task.ms ?? null,
        usage: task.usage ?? null,
      };
    }),
    ...(view.children ? { children: view.children } : {}),
  };
}

/** Cancels a running job through Restate; cancellation reaches its running tasks, finished ones stay. */
export async function cancelJob(
  admin: AdminClient,
  job: string,
  timeoutMs = 15_000,
): Promise<JobStatus> {
  const view = await requireView(admin, job);
  if (view.status !== "running") return view.status;
  const rows = await admin.query<{ id: string }>(
    `SELECT id FROM sys_invocation WHERE target_service_name = ${sqlString(JOB_SERVICE)} AND target_service_key = ${sqlString(job)} AND status != 'completed'`,
  );
  const ids = new Set([view.invocationId, ...rows.map((r) => r.id)]);
  for (const id of ids) await admin.cancel(id);
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const current = await requireView(admin, job);
    if (current.status !== "running") return current.status;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new PagentError(
    `asked Restate to cancel job ${job}, but it has not stopped after ${timeoutMs / 1000}s; check \`pagent status ${job}\``,
    EXIT.unavailable,
  );
}
