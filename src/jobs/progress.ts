import type { JobView, TaskKind, TaskView, Usage } from "../../services/types.js";
import type { EventBody } from "../output/events.js";

/** A row of Restate's `sys_invocation` table, the live truth about a task's attempts. */
export interface InvocationRow {
  id: string;
  status: string;
  retry_count?: number;
  last_failure?: string;
  completion_result?: string;
  completion_failure?: string;
}

export type LiveState = "queued" | "running" | "retrying" | "done" | "failed" | "cancelled";

/** What the CLI shows of one task at one moment. */
export interface TaskSnapshot {
  job: string;
  task: string;
  name: string;
  kind: TaskKind;
  args?: unknown;
  state: LiveState;
  attempt: number;
  maxAttempts?: number;
  error?: string;
  ms?: number;
  output?: unknown;
  usage?: Usage;
  /** A long input's map task: its chunk's index. */
  chunk?: number;
  reused?: true;
}

const QUEUED_STATUSES = new Set(["pending", "scheduled", "ready", "inboxed"]);

/** Restate's failure text starts with "[code Kind]" and carries a stack; users need the first line. */
export function failureLine(failure: string | undefined): string | undefined {
  if (!failure) return undefined;
  const first = failure
    .split("\n")[0]!
    .replace(/^\[\d+[^\]]*\]\s*/, "")
    .trim();
  return first.length > 300 ? `${first.slice(0, 297)}...` : first;
}

/** Merges the job's durable view of a task with the invocation's live status. */
export function snapshotTask(
  view: Pick<JobView, "job" | "maxAttempts">,
  task: TaskView,
  invocation: InvocationRow | undefined,
): TaskSnapshot {
  const base = {
    job: view.job,
    task: task.id,
    name: task.name,
    kind: task.kind,
    ...(task.args !== undefined ? { args: task.args } : {}),
    ...(task.chunk !== undefined ? { chunk: task.chunk } : {}),
    maxAttempts: view.maxAttempts,
    attempt: attemptOf(invocation, view.maxAttempts),
  };
  if (task.state !== "running" && task.state !== "queued") {
    return {
      ...base,
      state: task.state,
      ms: task.ms,
      output: task.output,
      usage: task.usage,
      error: task.error?.message,
      ...(task.reused ? { reused: true as const } : {}),
    };
  }
  if (task.inline) return { ...base, state: "running" };
  if (!invocation || QUEUED_STATUSES.has(invocation.status)) return { ...base, state: "queued" };
  const error = failureLine(invocation.last_failure);
  // Only a task waiting for its next attempt is retrying; once that attempt runs it is running
  // (attempt n), however its previous attempt ended.
  if (invocation.status === "backing-off" || invocation.status === "paused") {
    return { ...base, state: "retrying", error: error ?? invocation.status };
  }
  return { ...base, state: "running" };
}

/**
 * The attempt a task is on (running) or the one that just failed (backing off): Restate's
 * `retry_count`. It also counts attempts that no step failure caused (an endpoint that died
 * mid-attempt), so it is capped at the attempts a step gets: "retrying 12/5" would be nonsense.
 */
export function attemptOf(
  invocation: Pick<InvocationRow, "retry_count"> | undefined,
  maxAttempts: number | undefined,
): number {
  const attempt = Math.max(1, invocation?.retry_count ?? 1);
  return maxAttempts !== undefined ? Math.min(attempt, maxAttempts) : attempt;
}

/** The events that lead from one snapshot of a task to the next (none if nothing a user sees changed). */
export function taskEvents(previous: TaskSnapshot | undefined, next: TaskSnapshot): EventBody[] {
  const events: EventBody[] = [];
  const id = {
    task: next.task,
    name: next.name,
    ...(next.chunk !== undefined ? { chunk: next.chunk } : {}),
  };
  if (!previous) {
    events.push({
      type: "task.queued",
      ...id,
      kind: next.kind,
      ...(next.args !== undefined ? { args: next.args } : {}),
    });
  }
  const before = previous?.state ?? "queued";
  const changed = before !== next.state || (previous?.attempt ?? 1) !== next.attempt;
  if (!changed && previous) return events;
  // A task that finished between two polls still started: every task that ran shows it.
  if (
    before === "queued" &&
    (next.state === "retrying" || next.state === "done" || next.state === "failed")
  ) {
    events.push({ type: "task.started", ...id, attempt: 1 });
  }
  switch (next.state) {
    case "running":
      if (before !== "running") events.push({ type: "task.started", ...id, attempt: next.attempt });
      break;
    case "retrying":
      events.push({
        type: "task.retrying",
        ...id,
        attempt: next.attempt,
        ...(next.maxAttempts !== undefined ? { maxAttempts: next.maxAttempts } : {}),
        error: next.error ?? "retrying",
      });
      break;
    case "done":
      events.push({
        type: "task.done",
        ...id,
        ...(next.ms !== undefined ? { ms: next.ms } : {}),
        output: next.output,
        ...(next.usage ? { usage: next.usage } : {}),
        ...(next.reused ? { reused: true } : {}),
      });
      break;
    case "failed":
    case "cancelled":
      events.push({
        type: "task.failed",
        ...id,
        error: next.state === "cancelled" ? "cancelled" : (next.error ?? "failed"),
      });
      break;
    case "queued":
      break;
  }
  return events;
}
