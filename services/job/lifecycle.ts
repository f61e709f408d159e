/** How every job starts and ends: its first view, the grants check, and the finish that records the result. */
import * as restate from "@restatedev/restate-sdk";
import { refusal, type Asked, type GrantSource } from "../capabilities.js";
import type { Tasks } from "../tasks.js";
import {
  JOB_SERVICE,
  TASKS_SERVICE,
  type BatchResult,
  type JobKind,
  type JobResult,
  type JobView,
  type ModelSpec,
} from "../types.js";
import { refusedResult, type JobRequestEcho } from "./results.js";
import type { Job } from "./service.js";
import { getView, saveFinal, VIEW_VERSION } from "./view-store.js";

/** How long a finished job's view and result stay attachable; then the job is forgotten. */
export const DEFAULT_RETENTION_MS = 7 * 24 * 3600 * 1000;

/** What the workflows need from the endpoint that hosts them. */
export interface JobDeps {
  /**
   * What jobs may use (services/capabilities.ts), asked again at every check, when Tasks runs in
   * this same endpoint; undefined for a Job deployed apart, which asks the Tasks deployment instead.
   */
  grants?: GrantSource;
}

/** Typed clients of the Job's own handlers and of Tasks; the names come from services/types.ts. */
export const jobClient = (ctx: restate.ObjectContext, job: string) =>
  ctx.objectClient<Job>({ name: JOB_SERVICE }, job);
export const jobSendClient = (ctx: restate.ObjectContext, job: string) =>
  ctx.objectSendClient<Job>({ name: JOB_SERVICE }, job);
export const tasksClient = (ctx: restate.ObjectContext) =>
  ctx.serviceClient<Tasks>({ name: TASKS_SERVICE });

export async function startView(
  ctx: restate.ObjectContext,
  kind: JobKind,
  job: string,
  input: string,
  model: ModelSpec,
  maxAttempts?: number,
): Promise<JobView> {
  return {
    v: VIEW_VERSION,
    maxAttempts,
    job,
    kind,
    status: "running",
    invocationId: ctx.request().id,
    createdAt: await ctx.date.now(),
    input,
    model,
    tasks: [],
  };
}

/** Records the result, schedules the job's expiry, and ends a cancelled job's invocation as cancelled. */
export async function finish<R extends JobResult | BatchResult>(
  ctx: restate.ObjectContext,
  view: JobView,
  result: R,
  retentionMs = DEFAULT_RETENTION_MS,
): Promise<R> {
  view.status = result.status;
  // The moment {@link elapsed} read for the result's `ms`, if it did: one durable step fewer a job.
  view.finishedAt ??= await ctx.date.now();
  view.result = result;
  saveFinal(ctx, view);
  jobSendClient(ctx, view.job).expire(
    { finishedAt: view.finishedAt },
    restate.rpc.sendOpts({ delay: retentionMs }),
  );
  // A cancelled job keeps what it finished in its state, and its invocation ends as cancelled, so
  // Restate's UI and its invocation table tell the same story as pagent.
  if (result.status === "cancelled") throw new restate.CancelledError();
  return result;
}

/** A job that already finished (its idempotency record expired, its state did not) is not run again. */
export async function finishedResult<R>(ctx: restate.ObjectContext): Promise<R | undefined> {
  const view = await getView(ctx);
  return view?.result && view.status !== "running" ? (view.result as R) : undefined;
}

/**
 * Milliseconds since the job started, read durably, for the result; {@link finish} then takes the
 * same moment as the job's end.
 */
export async function elapsed(ctx: restate.ObjectContext, view: JobView): Promise<number> {
  view.finishedAt = await ctx.date.now();
  return view.finishedAt - view.createdAt;
}

/**
 * A job that names a capability the executors were not granted ends failed before anything is sent
 * or run. Journaled (a step, or the call's result), so a replay takes the same branch even if the
 * grants changed since. The grants belong to whoever runs the tasks: a Job hosted beside Tasks reads
 * them itself; a Job deployed apart (no key, no grants of its own) asks the Tasks deployment, since
 * checking against its own empty grants would refuse every job.
 */
export async function refused(
  ctx: restate.ObjectContext,
  deps: JobDeps,
  view: JobView,
  req: JobRequestEcho & { retentionMs?: number; grantsChecked?: true },
  asked: Asked,
  result: unknown,
): Promise<JobResult | undefined> {
  // The batch that started this job checked its model already (see AnalyzeRequest.grantsChecked).
  if (req.grantsChecked) return undefined;
  const message = await checkGrants(ctx, deps, asked);
  if (message === null) return undefined;
  const kind = view.kind as JobResult["kind"];
  return finish(ctx, view, refusedResult(req, kind, message, result), req.retentionMs);
}

/** The grants check as a journaled answer: the refusal, or null when everything asked is granted. */
export function checkGrants(
  ctx: restate.ObjectContext,
  deps: JobDeps,
  asked: Asked,
): Promise<string | null> {
  const { grants } = deps;
  return grants
    ? ctx.run("check grants", () => refusal(grants(), asked) ?? null)
    : tasksClient(ctx).checkGrants(asked);
}
