/**
 * The job view store: the only code that knows the Job object's state keys. The service writes a
 * view through it and the CLI (src/jobs/watch.ts) reads views back through it, from Restate's state
 * table, so both sides agree on the layout in one place. Starts nothing and imports only types of
 * the SDK: the CLI may import it.
 *
 * Layout, version 1: the view under `view`; while a job runs, each task's latest {@link TaskView}
 * under `task:<id>` and each batch input's {@link BatchChildView} under `child:<index>`, so recording
 * one task's progress writes one small value instead of the whole view (which made a fan-out of N
 * tasks cost O(N²)). The final view holds everything and the per-task keys are cleared.
 */
import type { ObjectContext, ObjectSharedContext } from "@restatedev/restate-sdk";
import type { BatchChildView, JobView, TaskView } from "../types.js";

/** The view layout this build writes; {@link fromStored} reads this one and every older one. */
export const VIEW_VERSION: JobView["v"] = 1;

const VIEW_KEY = "view";
const TASK_KEY_PREFIX = "task:";
const CHILD_KEY_PREFIX = "child:";

/** A stored view as this build understands it. Version 1 is the current layout (and the first). */
function fromStored(stored: unknown): JobView {
  return stored as JobView;
}

export async function getView(ctx: ObjectSharedContext): Promise<JobView | undefined> {
  const stored = await ctx.get<unknown>(VIEW_KEY);
  return stored === null || stored === undefined ? undefined : fromStored(stored);
}

export function saveView(ctx: ObjectContext, view: JobView): void {
  ctx.set(VIEW_KEY, view);
}

/** Records one task's progress without rewriting the whole view. */
export function saveTask(ctx: ObjectContext, task: TaskView): void {
  ctx.set(`${TASK_KEY_PREFIX}${task.id}`, task);
}

/** Records one batch input's progress without rewriting the whole view. */
export function saveChild(ctx: ObjectContext, view: JobView, index: number): void {
  ctx.set(`${CHILD_KEY_PREFIX}${index}`, view.children![index]!);
}

/**
 * Stores the final view, which holds every task and input, and drops the per-task records. The
 * view and those records are all a job keeps, so one clear of everything replaces a journal entry
 * per task or input (a batch of N inputs ends with two entries here, not N + 1).
 */
export function saveFinal(ctx: ObjectContext, view: JobView): void {
  ctx.clearAll();
  ctx.set(VIEW_KEY, view);
}

/** One row of Restate's `state` table for the Job object, with its value as UTF-8 text. */
export type StateRow = { service_key: string; key: string; value_utf8: string };

/** Puts each job's view together from its state rows: a running job's per-task records go into its view. */
export function assembleViews(rows: StateRow[]): Map<string, JobView> {
  const views = new Map<string, JobView>();
  for (const row of rows)
    if (row.key === VIEW_KEY) views.set(row.service_key, fromStored(JSON.parse(row.value_utf8)));
  for (const row of rows) {
    const view = views.get(row.service_key);
    if (!view || row.key === VIEW_KEY) continue;
    if (row.key.startsWith(TASK_KEY_PREFIX)) {
      const task = JSON.parse(row.value_utf8) as TaskView;
      const index = view.tasks.findIndex((t) => t.id === task.id);
      if (index >= 0) view.tasks[index] = task;
    } else if (row.key.startsWith(CHILD_KEY_PREFIX) && view.children) {
      const index = Number(row.key.slice(CHILD_KEY_PREFIX.length));
      if (view.children[index]) view.children[index] = JSON.parse(row.value_utf8) as BatchChildView;
    }
  }
  return views;
}
