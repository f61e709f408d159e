/**
 * The analyze workflow of a long input (services/chunking.ts): every analysis runs as map (one task
 * per chunk, in the content-addressed Chunk object, so an unchanged chunk is never asked again) then
 * reduce (one Tasks invocation that merges the chunk results). At most `concurrency` tasks run at
 * once; the provider's rate limit holds on top of that, in the endpoint.
 */
import type * as restate from "@restatedev/restate-sdk";
import { mapSpec, partialsText, reduceSpec } from "../analyses.js";
import type { ChunkOutcome, Chunks } from "../chunk-cache.js";
import { chunkKey } from "../chunking.js";
import {
  addUsage,
  CHUNK_SERVICE,
  ZERO_USAGE,
  type AnalysisSpec,
  type ErrorData,
  type JobResult,
  type JobView,
  type TaskView,
  type Usage,
} from "../types.js";
import type { AnalyzeRequest } from "./contract.js";
import { DEFAULT_RETENTION_MS, elapsed, finish, tasksClient } from "./lifecycle.js";
import {
  budgetError,
  jobResult,
  rethrowUnlessCancelled,
  statusOf,
  taskEnded,
  timeoutError,
} from "./results.js";
import {
  deadlineTimer,
  firstOrStop,
  markCancelled,
  STOP,
  stopTasks,
  type Settled,
} from "./stopping.js";
import { saveTask, saveView } from "./view-store.js";

/** Chunk tasks in flight at once when the request does not say (`--concurrency`). */
const DEFAULT_CONCURRENCY = 4;

/** One analysis's progress through its chunks. */
interface Progress {
  analysis: AnalysisSpec;
  outputs: unknown[];
  mapped: number;
  usage: Usage;
  /** The reduce's task, the last of the analysis's tasks in the view. */
  reduce: TaskView;
  error?: ErrorData;
}

type Step = { progress: Progress; chunk?: number; task: TaskView };

export async function run(
  ctx: restate.ObjectContext,
  req: AnalyzeRequest,
  view: JobView,
  chunks: string[],
): Promise<JobResult> {
  const retentionMs = req.retentionMs ?? DEFAULT_RETENTION_MS;
  const progress: Progress[] = req.analyses.map((analysis) => ({
    analysis,
    outputs: [],
    mapped: 0,
    usage: ZERO_USAGE,
    reduce: { id: analysis.name, name: analysis.name, kind: "analysis", state: "queued" },
  }));
  view.tasks = progress.flatMap((p) => [
    ...chunks.map((_, chunk): TaskView => ({
      id: `${p.analysis.name}#${chunk}`,
      name: p.analysis.name,
      kind: "analysis",
      state: "queued",
      chunk,
    })),
    p.reduce,
  ]);
  saveView(ctx, view);
  const taskOf = (p: Progress, chunk: number) =>
    view.tasks[progress.indexOf(p) * (chunks.length + 1) + chunk]!;
  // Chunk by chunk across the analyses, so they all move together; a reduce goes first once ready.
  const pending: Step[] = chunks.flatMap((_, chunk) =>
    progress.map((p) => ({ progress: p, chunk, task: taskOf(p, chunk) })),
  );
  const shared = {
    job: req.job,
    model: req.model,
    retry: req.retry,
    ...(req.limits ? { limits: req.limits } : {}),
    ...(req.maxTokensTotal !== undefined ? { tokenBudget: req.maxTokensTotal } : {}),
  };
  const start = (step: Step) => {
    const { analysis } = step.progress;
    if (step.chunk === undefined)
      return tasksClient(ctx).analysis({
        ...shared,
        analysis: reduceSpec(analysis),
        text: partialsText(analysis, step.progress.outputs),
      });
    const map = mapSpec(analysis);
    const text = chunks[step.chunk]!;
    return ctx
      .objectClient<Chunks>({ name: CHUNK_SERVICE }, chunkKey(map, req.model, text))
      .analysis({ ...shared, analysis: map, text, retentionMs });
  };

  const deadline = deadlineTimer(ctx, req, view.createdAt);
  const concurrency = req.concurrency ?? DEFAULT_CONCURRENCY;
  /** The steps in flight by a number of their own: each call is mapped once, then raced. */
  const inFlight = new Map<number, restate.RestatePromise<Settled<ChunkOutcome>>>();
  const steps = new Map<number, Step>();
  let seq = 0;
  let usage = ZERO_USAGE;
  let reused = 0;
  let stopped: ErrorData | undefined;
  let cancelled = false;

  const settle = (step: Step, value: ChunkOutcome | undefined, failure: unknown) => {
    const { task, progress: p } = step;
    const error = taskEnded(task, value, failure);
    saveTask(ctx, task);
    if (error) {
      if (step.chunk === undefined || p.error) return;
      // The analysis has no answer without every chunk; its other chunks still run, so a rerun
      // reuses them and asks only for this one again.
      p.error = {
        ...error,
        message: `chunk ${step.chunk + 1} of ${chunks.length}: ${error.message}`,
      };
      Object.assign(p.reduce, {
        state: "failed",
        error: { message: `not run: ${p.error.message}` },
      });
      saveTask(ctx, p.reduce);
      return;
    }
    usage = addUsage(usage, value!.usage);
    p.usage = addUsage(p.usage, value!.usage);
    if (step.chunk === undefined) return;
    if (value!.reused) reused++;
    p.outputs[step.chunk] = value!.output;
    if (++p.mapped === chunks.length && !p.error) pending.unshift({ progress: p, task: p.reduce });
  };

  /**
   * Tasks started but not yet in the view: their invocation ids are read after the next wait, by
   * when they have arrived, so the loop never waits a round trip to Restate per task it starts.
   */
  const starting: { task: TaskView; id: Promise<string> }[] = [];
  const recordStarted = async () => {
    for (const { task, id } of starting.splice(0)) {
      task.invocationId = await id;
      saveTask(ctx, task);
    }
  };
  try {
    while (inFlight.size > 0 || (!stopped && pending.length > 0)) {
      while (!stopped && inFlight.size < concurrency && pending.length > 0) {
        // Only finished tasks count: those in flight finish and may pass the budget.
        if (req.maxTokensTotal !== undefined && usage.total >= req.maxTokensTotal) {
          stopped = budgetError(usage.total, req.maxTokensTotal, "before this task started");
          break;
        }
        const step = pending.shift()!;
        const call = start(step);
        const index = seq++;
        steps.set(index, step);
        inFlight.set(
          index,
          call.map((value, failure) => ({ index, value, failure })),
        );
        step.task.state = "running";
        starting.push({ task: step.task, id: call.invocationId });
      }
      if (inFlight.size === 0) break;
      const settled = await firstOrStop([...inFlight.values()], deadline?.stop);
      await recordStarted();
      if (settled === STOP) {
        stopped = timeoutError(req.timeoutMs, "before this analysis finished");
        break;
      }
      inFlight.delete(settled.index);
      settle(steps.get(settled.index)!, settled.value, settled.failure);
    }
    // Out of time: what runs is stopped; out of time or budget: what never started is not run.
    if (stopped) stopTasks(ctx, view.tasks, stopped);
  } catch (failure) {
    rethrowUnlessCancelled(failure);
    cancelled = true;
    markCancelled(view.tasks);
  }

  const result: Record<string, unknown> = {};
  const errors: Record<string, ErrorData> = {};
  for (const p of progress) {
    if (p.reduce.state === "done") result[p.analysis.name] = p.reduce.output;
    else
      errors[p.analysis.name] =
        p.error ??
        (cancelled
          ? { message: "cancelled before it finished" }
          : (stopped ?? { message: "not run" }));
  }
  const done = Object.keys(result).length;
  return finish(
    ctx,
    view,
    {
      ...jobResult(req, "analyze", {
        status: cancelled ? "cancelled" : statusOf(done, progress.length - done),
        result: cancelled && done === 0 ? null : result,
        errors,
        usage,
        ms: await elapsed(ctx, view),
      }),
      chunks: chunks.length,
      reusedChunks: reused,
      usageByAnalysis: Object.fromEntries(progress.map((p) => [p.analysis.name, p.usage])),
    },
    req.retentionMs,
  );
}
