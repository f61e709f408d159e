/** The Job virtual object, keyed by job id: its handlers orchestrate, the work runs in Tasks invocations. */
import * as restate from "@restatedev/restate-sdk";
import type { GrantSource } from "../capabilities.js";
import { JOB_SERVICE, type BatchResult, type JobResult } from "../types.js";
import * as analyze from "./analyze.js";
import * as ask from "./ask.js";
import * as batch from "./batch.js";
import {
  AnalyzeRequestSchema,
  AskRequestSchema,
  BatchRequestSchema,
  ExpireRequestSchema,
  type AnalyzeRequest,
  type AskRequest,
  type BatchRequest,
  type ExpireRequest,
} from "./contract.js";
import type { JobDeps } from "./lifecycle.js";
import { getView } from "./view-store.js";

/**
 * `grants` says what jobs may use, asked again at every check, when Tasks is hosted beside the Job;
 * without it (the Job deployed apart) the Tasks deployment answers the check. The workflows call
 * Tasks by its name (TASKS_SERVICE), wherever Restate has it registered.
 */
export function createJob(grants?: GrantSource) {
  const deps: JobDeps = { grants };
  return restate.object({
    name: JOB_SERVICE,
    handlers: {
      analyze: restate.handlers.object.exclusive(
        { input: restate.serde.schema(AnalyzeRequestSchema) },
        (ctx: restate.ObjectContext, req: AnalyzeRequest): Promise<JobResult> =>
          analyze.run(ctx, req, deps),
      ),
      ask: restate.handlers.object.exclusive(
        { input: restate.serde.schema(AskRequestSchema) },
        (ctx: restate.ObjectContext, req: AskRequest): Promise<JobResult> =>
          ask.run(ctx, req, deps),
      ),
      batch: restate.handlers.object.exclusive(
        { input: restate.serde.schema(BatchRequestSchema) },
        (ctx: restate.ObjectContext, req: BatchRequest): Promise<BatchResult> =>
          batch.run(ctx, req, deps),
      ),
      /** A finished job's result (null while it runs): how a batch reads a cancelled input's work. */
      result: restate.handlers.object.shared(
        async (ctx: restate.ObjectSharedContext): Promise<JobResult | BatchResult | null> => {
          const view = await getView(ctx);
          return view?.status !== "running" ? (view?.result ?? null) : null;
        },
      ),
      /** Forgets a finished job once its retention has passed (a rerun of it since then is kept). */
      expire: restate.handlers.object.exclusive(
        { input: restate.serde.schema(ExpireRequestSchema) },
        async (ctx: restate.ObjectContext, req: ExpireRequest): Promise<void> => {
          const view = await getView(ctx);
          if (view && view.status !== "running" && view.finishedAt === req.finishedAt)
            ctx.clearAll();
        },
      ),
    },
    options: {
      // A job waits on its tasks for as long as they take; it must not be aborted for inactivity.
      inactivityTimeout: { hours: 1 },
      // Re-submitting a job id within this time attaches to the same invocation; after it, the job's
      // own state (kept for its retention) answers a re-submission without running anything.
      idempotencyRetention: { days: 1 },
      // Waiting on tasks and child jobs is no failed attempt, so this bounds only a handler that
      // keeps failing (a bug, an endpoint gone for good): it ends with an error instead of retrying
      // for ever. As for Tasks: about 8 minutes of attempts, so an endpoint restart is survived.
      retryPolicy: {
        maxAttempts: 50,
        onMaxAttempts: "kill",
        initialInterval: 500,
        maxInterval: 10_000,
      },
    },
  });
}

export type Job = ReturnType<typeof createJob>;
