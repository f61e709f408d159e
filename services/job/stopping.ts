/**
 * When a job stops before its work is done: the deadline as a durable timer, the fan-out that waits
 * on tasks one at a time so the deadline can cut in, and one way to stop the tasks still running.
 */
import * as restate from "@restatedev/restate-sdk";
import type { ErrorData, TaskView } from "../types.js";
import { saveTask } from "./view-store.js";

/** What a job's deadline timer resolves to. */
export const STOP = Symbol("stop");
export type Stop = restate.RestatePromise<typeof STOP>;

export type Settled<T> = { index: number; value?: T; failure?: restate.TerminalError };

/** A fan-out starts at most this many tasks at once: past ~200 in flight the SDK costs quadratic CPU. */
export const FAN_OUT_CHUNK = 100;

/**
 * The job's deadline as a durable timer: a Restate sleep, so it holds across restarts and replays.
 * A batch hands its own deadline to its child jobs, so they all stop at the same moment.
 */
export function deadlineTimer(
  ctx: restate.ObjectContext,
  bounds: { timeoutMs?: number; deadlineAt?: number },
  createdAt: number,
): { at: number; stop: Stop } | undefined {
  const at =
    bounds.deadlineAt ??
    (bounds.timeoutMs !== undefined ? createdAt + bounds.timeoutMs : undefined);
  if (at === undefined) return undefined;
  return {
    at,
    stop: ctx.sleep(Math.max(0, at - createdAt), "job timeout").map(() => STOP),
  };
}

/** Waits for the first of `calls`, or for `stop` (the deadline) if it comes first. */
export function firstOrStop<T>(
  calls: restate.RestatePromise<T>[],
  stop?: Stop,
): restate.RestatePromise<T | typeof STOP> {
  return restate.RestatePromise.race<restate.RestatePromise<T | typeof STOP>[]>(
    stop ? [...calls, stop] : calls,
  );
}

/**
 * Waits for the calls, handing each to `onSettled` the moment it settles, so the job's view shows
 * each task done the moment it is, not when the slowest sibling is. Returns false if `stop` (the
 * job's deadline) came first; from then on `onSettled` is not called again.
 *
 * One combinator over all the calls, each reporting through its own `map` callback: racing the
 * remaining calls again after each one settled built n combinators and attached a reaction to every
 * remaining call each time, O(n²) for a fan-out of n.
 */
export async function eachAsItSettles<T>(
  calls: restate.RestatePromise<T>[],
  onSettled: (settled: Settled<T>) => void,
  stop?: Stop,
): Promise<boolean> {
  let stopped = false;
  const all = restate.RestatePromise.all(
    calls.map((call, index) =>
      call.map((value, failure) => {
        if (!stopped) onSettled({ index, value, failure });
      }),
    ),
  );
  if (!stop) {
    await all;
    return true;
  }
  const first = await firstOrStop([all], stop);
  stopped = first === STOP;
  return !stopped;
}

/**
 * Out of time: cancels the tasks of `tasks` that are still queued or running and records them as
 * failed with `error`. Returns the tasks it stopped.
 */
export function stopTasks(
  ctx: restate.ObjectContext,
  tasks: TaskView[],
  error: ErrorData,
): TaskView[] {
  const stopped = tasks.filter((t) => t.state === "running" || t.state === "queued");
  for (const task of stopped) {
    if (task.invocationId) ctx.invocation(task.invocationId as restate.InvocationId).cancel();
    Object.assign(task, { state: "failed", error });
    saveTask(ctx, task);
  }
  return stopped;
}

/** A cancelled job: what had not finished is cancelled. */
export function markCancelled(tasks: TaskView[]): void {
  for (const task of tasks) {
    if (task.state === "queued" || task.state === "running") task.state = "cancelled";
  }
}
