/** The batch workflow: one analyze job per input, at most `concurrency` at a time, as child jobs. */
import * as restate from "@restatedev/restate-sdk";
import { askedByModel } from "../capabilities.js";
import {
  addUsage,
  ZERO_USAGE,
  type BadInputResult,
  type BatchResult,
  type ErrorData,
  type JobResult,
} from "../types.js";
import type { AnalyzeRequest, BatchRequest } from "./contract.js";
import {
  checkGrants,
  elapsed,
  finish,
  finishedResult,
  jobClient,
  startView,
  type JobDeps,
} from "./lifecycle.js";
import {
  badInputResult,
  batchStatus,
  budgetError,
  errorData,
  isCancel,
  NOT_RUN_CANCELLED,
  rethrowUnlessCancelled,
  sumCost,
  timeoutError,
} from "./results.js";
import { deadlineTimer, firstOrStop, STOP, type Settled } from "./stopping.js";
import { saveChild, saveView } from "./view-store.js";

/**
 * The inputs (indexes into `req.items`) whose model the grants allow, each distinct model checked
 * once for the whole batch, so the inputs' jobs need not each journal the same check. A refused
 * model's inputs check for themselves and end refused exactly as a job submitted alone would.
 */
async function grantedInputs(
  ctx: restate.ObjectContext,
  deps: JobDeps,
  pending: { index: number; request: AnalyzeRequest }[],
): Promise<Set<number>> {
  const byModel = new Map<string, { model: AnalyzeRequest["model"]; indexes: number[] }>();
  for (const { index, request } of pending) {
    const key = JSON.stringify(request.model);
    const same = byModel.get(key);
    if (same) same.indexes.push(index);
    else byModel.set(key, { model: request.model, indexes: [index] });
  }
  const granted = new Set<number>();
  for (const { model, indexes } of byModel.values())
    if ((await checkGrants(ctx, deps, askedByModel(model))) === null)
      for (const index of indexes) granted.add(index);
  return granted;
}

export async function run(
  ctx: restate.ObjectContext,
  req: BatchRequest,
  deps: JobDeps,
): Promise<BatchResult> {
  const previous = await finishedResult<BatchResult>(ctx);
  if (previous) return previous;
  const view = await startView(ctx, "batch", req.job, `${req.items.length} inputs`, { name: "" });
  const children = req.items.map((item) =>
    "error" in item
      ? { input: item.input, state: "failed" as const, error: item.error }
      : { job: item.request.job, input: item.input, state: "queued" as const },
  );
  view.children = children;
  const firstModel = req.items.find((i) => "request" in i);
  if (firstModel && "request" in firstModel) view.model = firstModel.request.model;
  saveView(ctx, view);

  const items: (JobResult | BadInputResult | undefined)[] = req.items.map((item) =>
    "error" in item ? badInputResult(item.input, item.error) : undefined,
  );
  const pending = req.items.flatMap((item, index) =>
    "request" in item ? [{ index, request: item.request }] : [],
  );
  /** Why an input has no result of its own: it never started, or its job failed as a whole. */
  const missing = new Map<number, ErrorData>();
  const failedWhole = new Set<number>();
  const inFlight = new Map<number, restate.RestatePromise<Settled<JobResult>>>();
  const deadline = deadlineTimer(ctx, req, view.createdAt);
  const granted = await grantedInputs(ctx, deps, pending);
  let used = ZERO_USAGE;
  let stopped: ErrorData | undefined;
  let cancelled = false;
  /** An input that will not start: recorded as cancelled with the reason. */
  const notStarted = (index: number, reason: ErrorData) => {
    missing.set(index, reason);
    Object.assign(view.children![index]!, { state: "cancelled", error: reason });
    saveChild(ctx, view, index);
  };
  /** Records how an input ended; its result carries this input's name, whichever input shares its job. */
  const settleChild = (index: number, value: JobResult | undefined, failure: unknown) => {
    const child = view.children![index]!;
    if (value) {
      items[index] = { ...value, input: child.input };
      child.state =
        value.status === "done" ? "done" : value.status === "cancelled" ? "cancelled" : "failed";
      saveChild(ctx, view, index);
    } else if (isCancel(failure)) {
      // Cancelled before its job started: nothing of it ran.
      notStarted(index, NOT_RUN_CANCELLED);
    } else {
      child.state = "failed";
      child.error = errorData(failure);
      missing.set(index, child.error);
      failedWhole.add(index);
      saveChild(ctx, view, index);
    }
  };
  /** A cancelled input's job fails its invocation as cancelled; its result is in its own state. */
  const cancelledResult = async (settled: Settled<JobResult>) =>
    isCancel(settled.failure)
      ? (((await jobClient(
          ctx,
          view.children![settled.index]!.job!,
        ).result()) as JobResult | null) ?? undefined)
      : undefined;
  const settle = async (settled: Settled<JobResult>) => {
    const value = settled.value ?? (await cancelledResult(settled));
    if (value) used = addUsage(used, value.usage);
    settleChild(settled.index, value, settled.failure);
  };
  try {
    while (pending.length > 0 || inFlight.size > 0) {
      while (!stopped && inFlight.size < req.concurrency && pending.length > 0) {
        // Only finished inputs count: those in flight may still push the total past the budget.
        if (req.maxTokensTotal !== undefined && used.total >= req.maxTokensTotal) {
          const { message } = budgetError(
            used.total,
            req.maxTokensTotal,
            "before this input started",
          );
          stopped = { message: `not run: ${message}` };
          break;
        }
        const { index, request } = pending.shift()!;
        const parameter: AnalyzeRequest = {
          ...request,
          ...(granted.has(index) ? { grantsChecked: true as const } : {}),
          ...(deadline ? { deadlineAt: deadline.at, timeoutMs: req.timeoutMs } : {}),
          ...(req.maxTokensTotal !== undefined
            ? { maxTokensTotal: req.maxTokensTotal - used.total }
            : {}),
        };
        const call = jobClient(ctx, request.job).analyze(
          parameter,
          restate.rpc.opts({ idempotencyKey: request.job }),
        );
        inFlight.set(
          index,
          call.map((value, failure) => ({ index, value, failure })),
        );
        view.children[index]!.state = "running";
        saveChild(ctx, view, index);
      }
      if (stopped) for (const { index } of pending.splice(0)) notStarted(index, stopped);
      if (inFlight.size === 0) break;
      // Inputs in flight when the deadline passes stop by themselves: they got the same deadline.
      const settled = await firstOrStop(
        [...inFlight.values()],
        stopped ? undefined : deadline?.stop,
      );
      if (settled === STOP) {
        stopped = timeoutError(req.timeoutMs, "before this input started");
        continue;
      }
      inFlight.delete(settled.index);
      await settle(settled);
      // An input's job stops at the shared deadline on its own timer, which may fire before the
      // batch's: read the clock before starting another, so none starts once the deadline passed.
      if (deadline && !stopped && pending.length > 0 && (await ctx.date.now()) >= deadline.at)
        stopped = timeoutError(req.timeoutMs, "before this input started");
    }
  } catch (failure) {
    rethrowUnlessCancelled(failure);
    cancelled = true;
    // Restate cancels the inputs in flight with the batch: each ends as `cancelled` with the
    // analyses it finished, so wait for those results instead of calling the inputs "not run".
    for (const call of inFlight.values()) await settle(await call);
    for (const [index, child] of view.children.entries())
      if (child.state === "queued") notStarted(index, NOT_RUN_CANCELLED);
  }
  const finished = items.filter((i): i is JobResult | BadInputResult => i !== undefined);
  const cost = sumCost(finished);
  return finish(
    ctx,
    view,
    {
      job: req.job,
      kind: "batch",
      status: batchStatus(cancelled, finished, req.items.length),
      items: req.items.map(
        (item, index): JobResult | BadInputResult =>
          items[index] ??
          badInputResult(
            item.input,
            missing.get(index) ?? { message: "not run" },
            !failedWhole.has(index),
          ),
      ),
      usage: finished.reduce((sum, item) => addUsage(sum, item.usage), ZERO_USAGE),
      ...(cost !== undefined ? { cost } : {}),
      ms: await elapsed(ctx, view),
    },
    req.retentionMs,
  );
}
