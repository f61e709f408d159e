/** The analyze workflow: every analysis of one input as its own Tasks invocation, all at once. */
import type * as restate from "@restatedev/restate-sdk";
import { askedByModel } from "../capabilities.js";
import { splitChunks } from "../chunking.js";
import type { AnalysisOutcome } from "../tasks.js";
import { addUsage, ZERO_USAGE, type ErrorData, type JobResult } from "../types.js";
import * as chunked from "./chunked.js";
import type { AnalyzeRequest } from "./contract.js";
import {
  elapsed,
  finish,
  finishedResult,
  refused,
  startView,
  tasksClient,
  type JobDeps,
} from "./lifecycle.js";
import { jobResult, rethrowUnlessCancelled, statusOf, taskEnded, timeoutError } from "./results.js";
import { deadlineTimer, eachAsItSettles, markCancelled, stopTasks } from "./stopping.js";
import { saveTask, saveView } from "./view-store.js";

export async function run(
  ctx: restate.ObjectContext,
  req: AnalyzeRequest,
  deps: JobDeps,
): Promise<JobResult> {
  const previous = await finishedResult<JobResult>(ctx);
  if (previous) return previous;
  const view = await startView(
    ctx,
    "analyze",
    req.job,
    req.input,
    req.model,
    req.retry.maxAttempts,
  );
  const refusedJob = await refused(ctx, deps, view, req, askedByModel(req.model), {});
  if (refusedJob) return refusedJob;
  // A long input (the CLI sets chunkTokens only then) runs as map and reduce; one that fits as always.
  const chunks = req.chunkTokens !== undefined ? splitChunks(req.text, req.chunkTokens) : [];
  if (chunks.length > 1) return chunked.run(ctx, req, view, chunks);
  view.tasks = req.analyses.map((a) => ({
    id: a.name,
    name: a.name,
    kind: "analysis",
    state: "running",
  }));
  const deadline = deadlineTimer(ctx, req, view.createdAt);
  const calls = req.analyses.map((analysis) =>
    tasksClient(ctx).analysis({
      job: req.job,
      analysis,
      text: req.text,
      model: req.model,
      retry: req.retry,
      ...(req.limits ? { limits: req.limits } : {}),
      // The analyses run together, so the budget can only stop an analysis's own retries.
      ...(req.maxTokensTotal !== undefined ? { tokenBudget: req.maxTokensTotal } : {}),
    }),
  );
  for (const [i, call] of calls.entries()) view.tasks[i]!.invocationId = await call.invocationId;
  saveView(ctx, view);

  const result: Record<string, unknown> = {};
  const errors: Record<string, ErrorData> = {};
  let usage = ZERO_USAGE;
  let cancelled = false;
  try {
    const finished = await eachAsItSettles<AnalysisOutcome>(
      calls,
      ({ index, value, failure }) => {
        const task = view.tasks[index]!;
        const error = taskEnded(task, value, failure);
        if (error) errors[task.name] = error;
        else {
          result[task.name] = value!.output;
          usage = addUsage(usage, value!.usage);
        }
        saveTask(ctx, task);
      },
      deadline?.stop,
    );
    if (!finished) {
      // Out of time: stop what still runs; the finished analyses are the job's result.
      const error = timeoutError(req.timeoutMs, "before this analysis finished");
      for (const task of stopTasks(ctx, view.tasks, error)) errors[task.name] = error;
    }
  } catch (failure) {
    rethrowUnlessCancelled(failure);
    cancelled = true;
    markCancelled(view.tasks);
    for (const task of view.tasks)
      if (task.state === "cancelled")
        errors[task.name] = { message: "cancelled before it finished" };
  }
  const done = view.tasks.filter((t) => t.state === "done").length;
  const failed = view.tasks.length - done;
  return finish(
    ctx,
    view,
    jobResult(req, "analyze", {
      status: cancelled ? "cancelled" : statusOf(done, failed),
      // In the order the analyses were asked for, not the order they finished in; a
      // cancelled job that finished nothing has no result rather than an empty one.
      result:
        cancelled && done === 0
          ? null
          : Object.fromEntries(
              view.tasks.filter((t) => t.name in result).map((t) => [t.name, result[t.name]]),
            ),
      errors: Object.fromEntries(
        view.tasks.filter((t) => t.name in errors).map((t) => [t.name, errors[t.name]!]),
      ),
      usage,
      ms: await elapsed(ctx, view),
    }),
    req.retentionMs,
  );
}
