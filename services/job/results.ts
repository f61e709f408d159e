/**
 * The result rules of a job, as pure functions: a job's status from how its parts ended, its cost,
 * the result of an input that never ran, how a failure becomes data. No Restate context here, so
 * they are unit-tested directly (test/unit/job-results.test.ts).
 */
import { CancelledError, TerminalError } from "@restatedev/restate-sdk";
import type { StoredMessage } from "@langchain/core/messages";
import { formatDuration } from "../duration.js";
import {
  costOf,
  LOCAL_MODEL_NAME,
  roundUsd,
  ZERO_USAGE,
  type BadInputResult,
  type ErrorData,
  type JobResult,
  type JobStatus,
  type ModelSpec,
  type Price,
  type TaskView,
  type Usage,
} from "../types.js";
import type { AnalysisOutcome } from "../tasks.js";

export function errorData(failure: unknown): ErrorData {
  if (failure instanceof TerminalError) {
    return { message: failure.message, code: failure.code };
  }
  return { message: failure instanceof Error ? failure.message : String(failure) };
}

/** The requests a failed task took, as its Tasks invocation reported them (services/tasks.ts). */
export function attemptsOf(failure: unknown): { attempts?: number } {
  const attempts = Number((failure as TerminalError | undefined)?.metadata?.attempts);
  return Number.isInteger(attempts) && attempts > 0 ? { attempts } : {};
}

/**
 * Records on a task's view how it ended: its output, time, usage, attempts (and `reused` for a
 * chunk answered by an earlier job), or its error. Returns the error, if it failed.
 */
export function taskEnded(
  task: TaskView,
  value: (AnalysisOutcome & { reused?: true }) | undefined,
  failure: unknown,
): ErrorData | undefined {
  if (!value) {
    const error = errorData(failure);
    Object.assign(task, { state: "failed", error, ...attemptsOf(failure) });
    return error;
  }
  Object.assign(task, {
    state: "done",
    output: value.output,
    ms: value.ms,
    usage: value.usage,
    ...(value.attempts !== undefined ? { attempts: value.attempts } : {}),
    ...(value.reused ? { reused: true } : {}),
  });
  return undefined;
}

/** The code of Restate's CancelledError, as a caller sees it on a cancelled callee's failure. */
const CANCELLED_CODE = 409;

export function isCancel(failure: unknown): boolean {
  return (
    failure instanceof CancelledError ||
    (failure instanceof TerminalError && failure.code === CANCELLED_CODE)
  );
}

/** A failure caught around a workflow's waiting: a cancellation of the job is handled, anything else goes on. */
export function rethrowUnlessCancelled(failure: unknown): void {
  if (!(failure instanceof CancelledError)) throw failure;
}

/** An analyze job: done if nothing failed, failed if nothing was done, partial otherwise. */
export function statusOf(done: number, failed: number): JobStatus {
  if (failed === 0) return "done";
  return done === 0 ? "failed" : "partial";
}

/** An ask job: out of budget, the transcript so far is what ran: partial, like a batch cut short. */
export function askStatus(ended: {
  cancelled: boolean;
  answered: boolean;
  outOfBudget: boolean;
}): JobStatus {
  if (ended.cancelled) return "cancelled";
  if (ended.answered) return "done";
  return ended.outOfBudget ? "partial" : "failed";
}

/** A batch: done if every input's job is done, failed if none did any of its work. */
export function batchStatus(
  cancelled: boolean,
  finished: (JobResult | BadInputResult)[],
  inputs: number,
): JobStatus {
  if (cancelled) return "cancelled";
  if (finished.length === inputs && finished.every((i) => i.status === "done")) return "done";
  return finished.some((i) => i.status === "done" || i.status === "partial") ? "partial" : "failed";
}

export function modelLabel(model: ModelSpec): JobResult["model"] {
  return model.name === LOCAL_MODEL_NAME ? { ...model, offline: true } : model;
}

export function withCost<R extends { usage: Usage }>(result: R, price: Price | undefined): R {
  const cost = costOf(result.usage, price);
  return cost !== undefined ? { ...result, cost } : result;
}

/** A batch's cost: the sum over the items that have one. */
export function sumCost(items: (JobResult | BadInputResult)[]): number | undefined {
  const costs = items.flatMap((i) => (i.job !== null && i.cost !== undefined ? [i.cost] : []));
  return costs.length > 0 ? roundUsd(costs.reduce((a, b) => a + b, 0)) : undefined;
}

/** What the job was asked, as its result repeats it. */
export interface JobRequestEcho {
  job: string;
  input: string;
  model: ModelSpec;
  price?: Price;
}

/** An analyze or ask job's result, with its cost when the model has a price. */
export function jobResult(
  req: JobRequestEcho,
  kind: JobResult["kind"],
  ended: Pick<JobResult, "status" | "result" | "errors" | "usage" | "ms">,
): JobResult {
  return withCost<JobResult>(
    {
      job: req.job,
      kind,
      status: ended.status,
      input: req.input,
      model: modelLabel(req.model),
      result: ended.result,
      errors: ended.errors,
      usage: ended.usage,
      ms: ended.ms,
    },
    req.price,
  );
}

/** A job refused before it ran anything (a capability the endpoint was not granted). */
export function refusedResult(
  req: JobRequestEcho,
  kind: JobResult["kind"],
  message: string,
  result: unknown,
): JobResult {
  return {
    job: req.job,
    kind,
    status: "failed",
    input: req.input,
    model: modelLabel(req.model),
    result,
    errors: { grants: { message, code: 403 } },
    usage: ZERO_USAGE,
    ms: 0,
  };
}

/** The result of an input refused before submission, or one a batch did not start (`notRun`). */
export function badInputResult(input: string, error: ErrorData, notRun = false): BadInputResult {
  return {
    job: null,
    status: "failed",
    input,
    result: null,
    errors: { input: error },
    usage: ZERO_USAGE,
    ...(notRun ? { notRun: true as const } : {}),
  };
}

export const NOT_RUN_CANCELLED: ErrorData = {
  message: "not run: the batch was cancelled before this input started",
};

export function timeoutError(timeoutMs: number | undefined, what: string): ErrorData {
  const limit = timeoutMs !== undefined ? ` of ${formatDuration(timeoutMs, "written")}` : "";
  return { message: `stopped: the job's --timeout${limit} passed ${what}` };
}

export function budgetError(used: number, budget: number, what: string): ErrorData {
  return {
    message: `token budget exhausted (${used} of --max-tokens-total ${budget} tokens used) ${what}`,
  };
}

/** An ask job's conversation as its result shows it. */
export function transcript(
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
