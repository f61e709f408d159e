import {
  HumanMessage,
  SystemMessage,
  ToolMessage,
  type StoredMessage,
} from "@langchain/core/messages";
import * as restate from "@restatedev/restate-sdk";
import {
  askedByModel,
  askedByTools,
  refusal,
  type Asked,
  type GrantSource,
} from "./capabilities.js";
import { formatDuration } from "./duration.js";
import { toStored, type ChatOutcome } from "./llm/chat.js";
import type { RateLimits } from "./llm/rate-limit.js";
import type { AnalysisOutcome, Tasks } from "./tasks.js";
import {
  pureToolStep,
  toolsFor,
  toolSpecs,
  type ToolCallOutcome,
  type ToolsConfig,
} from "./tool-runner.js";
import { mcpTarget, offeredMcpTools } from "./mcp/agent.js";
import {
  addUsage,
  costOf,
  LOCAL_MODEL_NAME,
  roundUsd,
  CHILD_KEY_PREFIX,
  JOB_SERVICE,
  TASK_KEY_PREFIX,
  VIEW_KEY,
  ZERO_USAGE,
  type AnalysisSpec,
  type BadInputResult,
  type BatchResult,
  type ErrorData,
  type JobKind,
  type JobResult,
  type JobStatus,
  type JobView,
  type ModelSpec,
  type Price,
  type RetrySettings,
  type TaskView,
  type Usage,
} from "./types.js";

/** How long a finished job's view and result stay attachable; then the job is forgotten. */
export const DEFAULT_RETENTION_MS = 7 * 24 * 3600 * 1000;

/** Bounds a user may put on a job; none of them is part of a job's identity. */
export interface JobBounds {
  /** The provider limits (`--rpm`, `--tpm`) this job's LLM calls ask the endpoint for. */
  limits?: RateLimits;
  /** `--timeout`: the whole job's time limit. */
  timeoutMs?: number;
  /** When a batch's `--timeout` ends, as epoch ms; set by the batch on its child jobs. */
  deadlineAt?: number;
  /** `--max-tokens-total`: no new task or turn starts once the job has used this many tokens. */
  maxTokensTotal?: number;
  /** The model's price, to put a cost on the result. */
  price?: Price;
}

export interface AnalyzeRequest extends JobBounds {
  job: string;
  retentionMs?: number;
  input: string;
  text: string;
  analyses: AnalysisSpec[];
  model: ModelSpec;
  retry: RetrySettings;
}

export interface AskRequest extends JobBounds {
  job: string;
  retentionMs?: number;
  input: string;
  prompt: string;
  system?: string;
  maxSteps: number;
  model: ModelSpec;
  tools: ToolsConfig;
  retry: RetrySettings;
}

export type BatchItem =
  { input: string; request: AnalyzeRequest } | { input: string; error: ErrorData };

export interface BatchRequest {
  job: string;
  retentionMs?: number;
  items: BatchItem[];
  concurrency: number;
  /** `--timeout` for the whole batch: no input starts after it, and running ones stop at it. */
  timeoutMs?: number;
  /** `--max-tokens-total` for the whole batch: no input starts once finished ones used this many. */
  maxTokensTotal?: number;
}

export { JOB_SERVICE, VIEW_KEY };

function errorData(failure: unknown): ErrorData {
  if (failure instanceof restate.TerminalError) {
    return { message: failure.message, code: failure.code };
  }
  return { message: failure instanceof Error ? failure.message : String(failure) };
}

/** The requests a failed task took, as its Tasks invocation reported them (services/tasks.ts). */
function attemptsOf(failure: unknown): { attempts?: number } {
  const attempts = Number((failure as restate.TerminalError | undefined)?.metadata?.attempts);
  return Number.isInteger(attempts) && attempts > 0 ? { attempts } : {};
}

function statusOf(done: number, failed: number): JobStatus {
  if (failed === 0) return "done";
  return done === 0 ? "failed" : "partial";
}

function modelLabel(model: ModelSpec): JobResult["model"] {
  return model.name === LOCAL_MODEL_NAME ? { ...model, offline: true } : model;
}

type Settled<T> = { index: number; value?: T; failure?: restate.TerminalError };

/** What a job's deadline timer resolves to. */
const STOP = Symbol("stop");
type Stop = restate.RestatePromise<typeof STOP>;

/**
 * Waits for the calls one at a time as they finish, so the job's view shows each task done the moment
 * it is, not when the slowest sibling is. Returns false if `stop` (the job's deadline) came first.
 */
async function eachAsItSettles<T>(
  calls: restate.RestatePromise<T>[],
  onSettled: (settled: Settled<T>) => void,
  stop?: Stop,
): Promise<boolean> {
  const settling = calls.map((call, index) =>
    call.map((value, failure): Settled<T> => ({ index, value, failure })),
  );
  let remaining = settling.map((_, i) => i);
  while (remaining.length > 0) {
    const racing = remaining.map((i) => settling[i]!);
    const settled = await restate.RestatePromise.race<
      restate.RestatePromise<Settled<T> | typeof STOP>[]
    >(stop ? [...racing, stop] : racing);
    if (settled === STOP) return false;
    remaining = remaining.filter((i) => i !== settled.index);
    onSettled(settled);
  }
  return true;
}

function timeoutError(timeoutMs: number | undefined, what: string): ErrorData {
  const limit = timeoutMs !== undefined ? ` of ${formatDuration(timeoutMs, "written")}` : "";
  return { message: `stopped: the job's --timeout${limit} passed ${what}` };
}

function budgetError(used: number, budget: number, what: string): ErrorData {
  return {
    message: `token budget exhausted (${used} of --max-tokens-total ${budget} tokens used) ${what}`,
  };
}

/**
 * The job's deadline as a durable timer: a Restate sleep, so it holds across restarts and replays.
 * A batch hands its own deadline to its child jobs, so they all stop at the same moment.
 */
function deadlineTimer(
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

function sumCost(items: (JobResult | BadInputResult)[]): number | undefined {
  const costs = items.flatMap((i) => (i.job !== null && i.cost !== undefined ? [i.cost] : []));
  return costs.length > 0 ? roundUsd(costs.reduce((a, b) => a + b, 0)) : undefined;
}

function withCost<R extends { usage: Usage }>(result: R, price: Price | undefined): R {
  const cost = costOf(result.usage, price);
  return cost !== undefined ? { ...result, cost } : result;
}

async function startView(
  ctx: restate.ObjectContext,
  kind: JobKind,
  job: string,
  input: string,
  model: ModelSpec,
  maxAttempts?: number,
): Promise<JobView> {
  return {
    v: 1,
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

async function finish<R extends JobResult | BatchResult>(
  ctx: restate.ObjectContext,
  view: JobView,
  result: R,
  retentionMs = DEFAULT_RETENTION_MS,
): Promise<R> {
  view.status = result.status;
  view.finishedAt = await ctx.date.now();
  view.result = result;
  ctx.set(VIEW_KEY, view);
  for (const task of view.tasks) ctx.clear(`${TASK_KEY_PREFIX}${task.id}`);
  for (const index of view.children?.keys() ?? []) ctx.clear(`${CHILD_KEY_PREFIX}${index}`);
  ctx.genericSend({
    service: JOB_SERVICE,
    method: "expire",
    key: view.job,
    parameter: { finishedAt: view.finishedAt },
    inputSerde: restate.serde.json,
    delay: retentionMs,
  });
  // A cancelled job keeps what it finished in its state, and its invocation ends as cancelled, so
  // Restate's UI and its invocation table tell the same story as pagent.
  if (result.status === "cancelled") throw new restate.CancelledError();
  return result;
}

/** A job that already finished (its idempotency record expired, its state did not) is not run again. */
async function finishedResult<R>(ctx: restate.ObjectContext): Promise<R | undefined> {
  const view = await ctx.get<JobView>(VIEW_KEY);
  return view?.result && view.status !== "running" ? (view.result as R) : undefined;
}

/** The code of Restate's CancelledError, as a caller sees it on a cancelled callee's failure. */
const CANCELLED_CODE = 409;

function isCancel(failure: unknown): boolean {
  return (
    failure instanceof restate.CancelledError ||
    (failure instanceof restate.TerminalError && failure.code === CANCELLED_CODE)
  );
}

const NOT_RUN_CANCELLED: ErrorData = {
  message: "not run: the batch was cancelled before this input started",
};

/** A fan-out starts at most this many tasks at once: past ~200 in flight the SDK costs quadratic CPU. */
const FAN_OUT_CHUNK = 100;

/** Records one task's progress without rewriting the whole view. */
function saveTask(ctx: restate.ObjectContext, task: TaskView): void {
  ctx.set(`${TASK_KEY_PREFIX}${task.id}`, task);
}

function saveChild(ctx: restate.ObjectContext, view: JobView, index: number): void {
  ctx.set(`${CHILD_KEY_PREFIX}${index}`, view.children![index]!);
}

function markCancelled(view: JobView): void {
  for (const task of view.tasks) {
    if (task.state === "queued" || task.state === "running") task.state = "cancelled";
  }
}

/** The job object. Its handlers orchestrate; the work happens in {@link Tasks} invocations. */
export function createJob(tasks: Tasks, grants: GrantSource) {
  /**
   * A job that names a capability the endpoint was not granted ends failed before anything is sent
   * or run. A step, so a replay takes the same branch even if the grants changed since.
   */
  const refused = async (
    ctx: restate.ObjectContext,
    view: JobView,
    req: { job: string; input: string; model: ModelSpec; retentionMs?: number },
    asked: Asked,
    result: unknown,
  ): Promise<JobResult | undefined> => {
    const message = await ctx.run("check grants", () => refusal(grants(), asked) ?? null);
    if (message === null) return undefined;
    return finish(
      ctx,
      view,
      {
        job: req.job,
        kind: view.kind as JobResult["kind"],
        status: "failed",
        input: req.input,
        model: modelLabel(req.model),
        result,
        errors: { grants: { message, code: 403 } },
        usage: ZERO_USAGE,
        ms: 0,
      },
      req.retentionMs,
    );
  };

  const analyze = async (ctx: restate.ObjectContext, req: AnalyzeRequest): Promise<JobResult> => {
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
    const refusedJob = await refused(ctx, view, req, askedByModel(req.model), {});
    if (refusedJob) return refusedJob;
    view.tasks = req.analyses.map((a) => ({
      id: a.name,
      name: a.name,
      kind: "analysis",
      state: "running",
    }));
    const deadline = deadlineTimer(ctx, req, view.createdAt);
    const calls = req.analyses.map((analysis) =>
      ctx.serviceClient(tasks).analysis({
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
    const invocationIds: restate.InvocationId[] = [];
    for (const [i, call] of calls.entries()) {
      invocationIds[i] = await call.invocationId;
      view.tasks[i]!.invocationId = invocationIds[i];
    }
    ctx.set(VIEW_KEY, view);

    const result: Record<string, unknown> = {};
    const errors: Record<string, ErrorData> = {};
    let usage = ZERO_USAGE;
    let cancelled = false;
    try {
      const finished = await eachAsItSettles<AnalysisOutcome>(
        calls,
        ({ index, value, failure }) => {
          const task = view.tasks[index]!;
          if (value) {
            Object.assign(task, {
              state: "done",
              output: value.output,
              ms: value.ms,
              usage: value.usage,
              ...(value.attempts !== undefined ? { attempts: value.attempts } : {}),
            });
            result[task.name] = value.output;
            usage = addUsage(usage, value.usage);
          } else {
            Object.assign(task, {
              state: "failed",
              error: errorData(failure),
              ...attemptsOf(failure),
            });
            errors[task.name] = errorData(failure);
          }
          saveTask(ctx, task);
        },
        deadline?.stop,
      );
      if (!finished) {
        // Out of time: stop what still runs; the finished analyses are the job's result.
        for (const [i, task] of view.tasks.entries()) {
          if (task.state !== "running") continue;
          ctx.invocation(invocationIds[i]!).cancel();
          const error = timeoutError(req.timeoutMs, "before this analysis finished");
          Object.assign(task, { state: "failed", error });
          errors[task.name] = error;
          saveTask(ctx, task);
        }
      }
    } catch (error) {
      if (!(error instanceof restate.CancelledError)) throw error;
      cancelled = true;
      markCancelled(view);
      for (const task of view.tasks)
        if (task.state === "cancelled")
          errors[task.name] = { message: "cancelled before it finished" };
    }
    const done = view.tasks.filter((t) => t.state === "done").length;
    const failed = view.tasks.length - done;
    return finish(
      ctx,
      view,
      withCost<JobResult>(
        {
          job: req.job,
          kind: "analyze",
          status: cancelled ? "cancelled" : statusOf(done, failed),
          input: req.input,
          model: modelLabel(req.model),
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
          ms: (await ctx.date.now()) - view.createdAt,
        },
        req.price,
      ),
      req.retentionMs,
    );
  };

  const ask = async (ctx: restate.ObjectContext, req: AskRequest): Promise<JobResult> => {
    const previous = await finishedResult<JobResult>(ctx);
    if (previous) return previous;
    const view = await startView(ctx, "ask", req.job, req.input, req.model, req.retry.maxAttempts);
    const refusedJob = await refused(
      ctx,
      view,
      req,
      { ...askedByModel(req.model), ...askedByTools(req.tools) },
      { answer: null, transcript: [] },
    );
    if (refusedJob) return refusedJob;
    const messages: StoredMessage[] = toStored([
      ...(req.system ? [new SystemMessage(req.system)] : []),
      new HumanMessage(req.prompt),
    ]);
    const registry = toolsFor(req.tools);
    const mcp = await offeredMcpTools(ctx, tasks, req);
    const specs = [...toolSpecs(registry), ...mcp.specs];
    let usage = ZERO_USAGE;
    let answer: string | null = null;
    let error: ErrorData | undefined = mcp.error;
    let cancelled = false;
    let outOfBudget = false;
    const track = (task: TaskView): TaskView => {
      view.tasks.push(task);
      return task;
    };
    const deadline = deadlineTimer(ctx, req, view.createdAt);
    /** Out of time: stops the running tasks and ends the loop with the timeout as the job's error. */
    const stopRunning = (unfinished: TaskView[]) => {
      error = timeoutError(req.timeoutMs, "before the agent gave a final answer");
      for (const task of unfinished) {
        if (task.state !== "running" && task.state !== "queued") continue;
        if (task.invocationId) ctx.invocation(task.invocationId as restate.InvocationId).cancel();
        const stopped = timeoutError(req.timeoutMs, "before this finished");
        Object.assign(task, { state: "failed", error: stopped });
        saveTask(ctx, task);
      }
    };
    try {
      for (let turn = 1; turn <= req.maxSteps && answer === null && !error; turn++) {
        if (req.maxTokensTotal !== undefined && usage.total >= req.maxTokensTotal) {
          outOfBudget = true;
          error = budgetError(usage.total, req.maxTokensTotal, `before turn ${turn}`);
          break;
        }
        const turnTask = track({
          id: `turn-${turn}`,
          name: `llm turn ${turn}`,
          kind: "llm",
          state: "running",
        });
        const call = ctx.serviceClient(tasks).llmTurn({
          job: req.job,
          turn,
          model: req.model,
          messages,
          tools: specs,
          retry: req.retry,
          ...(req.limits ? { limits: req.limits } : {}),
        });
        turnTask.invocationId = await call.invocationId;
        ctx.set(VIEW_KEY, view);
        let outcome: ChatOutcome;
        try {
          const settled = deadline
            ? await restate.RestatePromise.race<
                restate.RestatePromise<ChatOutcome | typeof STOP>[]
              >([call, deadline.stop])
            : await call;
          if (settled === STOP) {
            stopRunning([turnTask]);
            break;
          }
          outcome = settled;
        } catch (failure) {
          if (failure instanceof restate.CancelledError) throw failure;
          Object.assign(turnTask, {
            state: "failed",
            error: errorData(failure),
            ...attemptsOf(failure),
          });
          error = errorData(failure);
          break;
        }
        usage = addUsage(usage, outcome.usage);
        Object.assign(turnTask, {
          state: "done",
          ms: outcome.ms,
          usage: outcome.usage,
          ...(outcome.attempts !== undefined ? { attempts: outcome.attempts } : {}),
          output:
            outcome.toolCalls.length > 0
              ? { toolCalls: outcome.toolCalls.length }
              : { answer: outcome.content },
        });
        saveTask(ctx, turnTask);
        messages.push(outcome.message);
        if (outcome.toolCalls.length === 0) {
          answer = outcome.content;
          break;
        }
        const toolTasks = outcome.toolCalls.map((tc) =>
          track({ id: tc.id, name: tc.name, kind: "tool", args: tc.args, state: "queued" }),
        );
        ctx.set(VIEW_KEY, view);
        const outcomes: ToolCallOutcome[] = [];
        let toolsFinished = true;
        for (let from = 0; from < toolTasks.length && toolsFinished; from += FAN_OUT_CHUNK) {
          const chunk = outcome.toolCalls.slice(from, from + FAN_OUT_CHUNK);
          const toolCalls = chunk.map((tc): restate.RestatePromise<ToolCallOutcome> => {
            const call = {
              job: req.job,
              callId: tc.id,
              name: tc.name,
              args: tc.args,
              tools: req.tools,
              retry: req.retry,
              ...mcpTarget(mcp, tc.name),
            };
            const tool = registry.get(tc.name);
            return tool?.pure ? pureToolStep(ctx, tool, call) : ctx.serviceClient(tasks).tool(call);
          });
          for (const [i, call] of toolCalls.entries()) {
            const task = toolTasks[from + i]!;
            task.state = "running";
            if ("invocationId" in call) {
              task.invocationId = await (call as restate.InvocationPromise<ToolCallOutcome>)
                .invocationId;
            } else {
              task.inline = true;
            }
            saveTask(ctx, task);
          }
          toolsFinished = await eachAsItSettles<ToolCallOutcome>(
            toolCalls,
            ({ index, value, failure }) => {
              const outcomeOrFailure: ToolCallOutcome = value ?? {
                ok: false,
                content: `error: ${errorData(failure).message}`,
                error: errorData(failure),
                ms: 0,
              };
              outcomes[from + index] = outcomeOrFailure;
              const task = toolTasks[from + index]!;
              Object.assign(task, {
                state: outcomeOrFailure.ok ? "done" : "failed",
                output: outcomeOrFailure.content,
                error: outcomeOrFailure.error,
                ms: outcomeOrFailure.ms,
              });
              saveTask(ctx, task);
            },
            deadline?.stop,
          );
        }
        if (!toolsFinished) {
          stopRunning(toolTasks);
          break;
        }
        // The model expects the results in the order of its calls, whatever order they finished in.
        messages.push(
          ...toStored(
            outcome.toolCalls.map(
              (tc, i) =>
                new ToolMessage({
                  content: outcomes[i]!.content,
                  tool_call_id: tc.id,
                  name: tc.name,
                }),
            ),
          ),
        );
      }
    } catch (failure) {
      if (!(failure instanceof restate.CancelledError)) throw failure;
      cancelled = true;
      markCancelled(view);
      error = { message: "cancelled before the agent gave a final answer" };
    }
    if (answer === null && !error && !cancelled) {
      error = {
        message: `stopped after ${req.maxSteps} steps without a final answer (raise --max-steps)`,
      };
    }
    return finish<JobResult>(
      ctx,
      view,
      withCost<JobResult>(
        {
          job: req.job,
          kind: "ask",
          // Out of budget, the transcript so far is what ran: partial, like a batch cut short.
          status: cancelled
            ? "cancelled"
            : answer !== null
              ? "done"
              : outOfBudget
                ? "partial"
                : "failed",
          input: req.input,
          model: modelLabel(req.model),
          result: { answer, transcript: transcript(messages) },
          errors: error ? { agent: error } : {},
          usage,
          ms: (await ctx.date.now()) - view.createdAt,
        },
        req.price,
      ),
      req.retentionMs,
    );
  };

  const batch = async (ctx: restate.ObjectContext, req: BatchRequest): Promise<BatchResult> => {
    const previous = await finishedResult<BatchResult>(ctx);
    if (previous) return previous;
    const view = await startView(ctx, "batch", req.job, `${req.items.length} inputs`, { name: "" });
    view.children = req.items.map((item) =>
      "error" in item
        ? { input: item.input, state: "failed", error: item.error }
        : { job: item.request.job, input: item.input, state: "queued" },
    );
    const firstModel = req.items.find((i) => "request" in i);
    if (firstModel && "request" in firstModel) view.model = firstModel.request.model;
    ctx.set(VIEW_KEY, view);

    const items: (JobResult | BadInputResult | undefined)[] = req.items.map((item) =>
      "error" in item
        ? {
            job: null,
            status: "failed",
            input: item.input,
            result: null,
            errors: { input: item.error },
            usage: ZERO_USAGE,
          }
        : undefined,
    );
    const pending = req.items.flatMap((item, index) =>
      "request" in item ? [{ index, request: item.request }] : [],
    );
    /** Why an input has no result of its own: it never started, or its job failed as a whole. */
    const missing = new Map<number, ErrorData>();
    const failedWhole = new Set<number>();
    const inFlight = new Map<number, restate.RestatePromise<Settled<JobResult>>>();
    const deadline = deadlineTimer(ctx, req, view.createdAt);
    let used = ZERO_USAGE;
    let stopped: ErrorData | undefined;
    let cancelled = false;
    /** Records how an input ended; its result carries this input's name, whichever input shares its job. */
    const settleChild = (index: number, value: JobResult | undefined, failure: unknown) => {
      const child = view.children![index]!;
      if (value) {
        items[index] = { ...value, input: child.input };
        child.state =
          value.status === "done" ? "done" : value.status === "cancelled" ? "cancelled" : "failed";
      } else if (isCancel(failure)) {
        // Cancelled before its job started: nothing of it ran.
        Object.assign(child, { state: "cancelled", error: NOT_RUN_CANCELLED });
        missing.set(index, NOT_RUN_CANCELLED);
      } else {
        child.state = "failed";
        child.error = errorData(failure);
        missing.set(index, child.error);
        failedWhole.add(index);
      }
      saveChild(ctx, view, index);
    };
    /** A cancelled input's job fails its invocation as cancelled; its result is in its own state. */
    const cancelledResult = async (settled: Settled<JobResult>) =>
      isCancel(settled.failure)
        ? ((await ctx.genericCall<null, JobResult | null>({
            service: JOB_SERVICE,
            method: "result",
            key: view.children![settled.index]!.job!,
            parameter: null,
            inputSerde: restate.serde.json,
            outputSerde: restate.serde.json,
          })) ?? undefined)
        : undefined;
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
            ...(deadline ? { deadlineAt: deadline.at, timeoutMs: req.timeoutMs } : {}),
            ...(req.maxTokensTotal !== undefined
              ? { maxTokensTotal: req.maxTokensTotal - used.total }
              : {}),
          };
          const call = ctx.genericCall<AnalyzeRequest, JobResult>({
            service: JOB_SERVICE,
            method: "analyze",
            key: request.job,
            parameter,
            idempotencyKey: request.job,
            inputSerde: restate.serde.json,
            outputSerde: restate.serde.json,
          });
          inFlight.set(
            index,
            call.map((value, failure) => ({ index, value, failure })),
          );
          view.children[index]!.state = "running";
          saveChild(ctx, view, index);
        }
        if (stopped) {
          for (const { index } of pending.splice(0)) {
            missing.set(index, stopped);
            Object.assign(view.children[index]!, { state: "cancelled", error: stopped });
            saveChild(ctx, view, index);
          }
        }
        if (inFlight.size === 0) break;
        // Inputs in flight when the deadline passes stop by themselves: they got the same deadline.
        const racing = [...inFlight.values()];
        const settled = await restate.RestatePromise.race<
          restate.RestatePromise<Settled<JobResult> | typeof STOP>[]
        >(deadline && !stopped ? [...racing, deadline.stop] : racing);
        if (settled === STOP) {
          stopped = timeoutError(req.timeoutMs, "before this input started");
          continue;
        }
        inFlight.delete(settled.index);
        const value = settled.value ?? (await cancelledResult(settled));
        if (value) used = addUsage(used, value.usage);
        settleChild(settled.index, value, settled.failure);
      }
    } catch (failure) {
      if (!(failure instanceof restate.CancelledError)) throw failure;
      cancelled = true;
      // Restate cancels the inputs in flight with the batch: each ends as `cancelled` with the
      // analyses it finished, so wait for those results instead of calling the inputs "not run".
      for (const [index, call] of inFlight) {
        const settled = await call;
        settleChild(index, settled.value ?? (await cancelledResult(settled)), settled.failure);
      }
      for (const [index, child] of view.children.entries()) {
        if (child.state !== "queued") continue;
        missing.set(index, NOT_RUN_CANCELLED);
        Object.assign(child, { state: "cancelled", error: NOT_RUN_CANCELLED });
        saveChild(ctx, view, index);
      }
    }
    const finished = items.filter((i): i is JobResult | BadInputResult => i !== undefined);
    const allDone =
      finished.length === req.items.length && finished.every((i) => i.status === "done");
    const noneDone = !finished.some((i) => i.status === "done" || i.status === "partial");
    const cost = sumCost(finished);
    return finish(
      ctx,
      view,
      {
        job: req.job,
        kind: "batch",
        status: cancelled ? "cancelled" : allDone ? "done" : noneDone ? "failed" : "partial",
        items: req.items.map(
          (item, index): JobResult | BadInputResult =>
            items[index] ?? {
              job: null,
              status: "failed",
              input: item.input,
              result: null,
              errors: { input: missing.get(index) ?? { message: "not run" } },
              usage: ZERO_USAGE,
              ...(failedWhole.has(index) ? {} : { notRun: true as const }),
            },
        ),
        usage: finished.reduce((sum, item) => addUsage(sum, item.usage), ZERO_USAGE),
        ...(cost !== undefined ? { cost } : {}),
        ms: (await ctx.date.now()) - view.createdAt,
      },
      req.retentionMs,
    );
  };

  return restate.object({
    name: JOB_SERVICE,
    handlers: {
      analyze,
      ask,
      batch,
      /** A finished job's result (null while it runs): how a batch reads a cancelled input's work. */
      result: restate.handlers.object.shared(
        async (ctx: restate.ObjectSharedContext): Promise<JobResult | BatchResult | null> => {
          const view = await ctx.get<JobView>(VIEW_KEY);
          return view?.status !== "running" ? (view?.result ?? null) : null;
        },
      ),
      /** Forgets a finished job once its retention has passed (a rerun of it since then is kept). */
      expire: async (ctx: restate.ObjectContext, req: { finishedAt: number }): Promise<void> => {
        const view = await ctx.get<JobView>(VIEW_KEY);
        if (view && view.status !== "running" && view.finishedAt === req.finishedAt) ctx.clearAll();
      },
    },
    options: {
      // A job waits on its tasks for as long as they take; it must not be aborted for inactivity.
      inactivityTimeout: { hours: 1 },
      // Re-submitting a job id within this time attaches to the same invocation; after it, the job's
      // own state (kept for its retention) answers a re-submission without running anything.
      idempotencyRetention: { days: 1 },
    },
  });
}

export type Job = ReturnType<typeof createJob>;

function transcript(
  messages: StoredMessage[],
): { role: string; content: string; toolCalls?: unknown }[] {
  return messages.map((m) => ({
    role: m.type,
    content: typeof m.data.content === "string" ? m.data.content : JSON.stringify(m.data.content),
    ...((m.data as { tool_calls?: unknown[] }).tool_calls?.length
      ? { toolCalls: (m.data as { tool_calls?: unknown[] }).tool_calls }
      : {}),
  }));
}
