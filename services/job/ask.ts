/** The ask workflow: an agent loop of LLM turns and tool calls, each a Tasks invocation (or a pure step). */
import {
  HumanMessage,
  SystemMessage,
  ToolMessage,
  type StoredMessage,
} from "@langchain/core/messages";
import * as restate from "@restatedev/restate-sdk";
import { askedByModel, askedByTools } from "../capabilities.js";
import { toStored, type ChatOutcome } from "../llm/chat.js";
import { mcpTarget, offeredMcpTools } from "../mcp/agent.js";
import { pureToolStep, toolsFor, toolSpecs, type ToolCallOutcome } from "../tool-runner.js";
import { addUsage, ZERO_USAGE, type ErrorData, type JobResult, type TaskView } from "../types.js";
import type { AskRequest } from "./contract.js";
import {
  elapsed,
  finish,
  finishedResult,
  refused,
  startView,
  tasksClient,
  type JobDeps,
} from "./lifecycle.js";
import {
  askStatus,
  attemptsOf,
  budgetError,
  errorData,
  jobResult,
  rethrowUnlessCancelled,
  timeoutError,
  transcript,
} from "./results.js";
import {
  deadlineTimer,
  eachAsItSettles,
  FAN_OUT_CHUNK,
  firstOrStop,
  markCancelled,
  STOP,
  stopTasks,
} from "./stopping.js";
import { saveTask, saveView } from "./view-store.js";

export async function run(
  ctx: restate.ObjectContext,
  req: AskRequest,
  deps: JobDeps,
): Promise<JobResult> {
  const previous = await finishedResult<JobResult>(ctx);
  if (previous) return previous;
  const view = await startView(ctx, "ask", req.job, req.input, req.model, req.retry.maxAttempts);
  const refusedJob = await refused(
    ctx,
    deps,
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
  const mcp = await offeredMcpTools(ctx, req);
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
  /** Out of time: stops the unfinished tasks; the timeout becomes the job's error. */
  const outOfTime = (unfinished: TaskView[]): ErrorData => {
    stopTasks(ctx, unfinished, timeoutError(req.timeoutMs, "before this finished"));
    return timeoutError(req.timeoutMs, "before the agent gave a final answer");
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
      const call = tasksClient(ctx).llmTurn({
        job: req.job,
        turn,
        model: req.model,
        messages,
        tools: specs,
        retry: req.retry,
        ...(req.limits ? { limits: req.limits } : {}),
      });
      turnTask.invocationId = await call.invocationId;
      saveView(ctx, view);
      let outcome: ChatOutcome;
      try {
        const settled = deadline ? await firstOrStop([call], deadline.stop) : await call;
        if (settled === STOP) {
          error = outOfTime([turnTask]);
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
      saveView(ctx, view);
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
          return tool?.pure ? pureToolStep(ctx, tool, call) : tasksClient(ctx).tool(call);
        });
        // All the chunk's invocation ids in one wait: one at a time cost a round trip to Restate each.
        const ids = await restate.RestatePromise.all(
          toolCalls.map((call) =>
            restate.RestatePromise.resolve(
              "invocationId" in call
                ? (call as restate.InvocationPromise<ToolCallOutcome>).invocationId
                : undefined,
            ),
          ),
        );
        for (const [i, id] of ids.entries()) {
          const task = toolTasks[from + i]!;
          task.state = "running";
          if (id !== undefined) {
            task.invocationId = id;
            saveTask(ctx, task);
          } else {
            // A step in this invocation takes no time worth a journal write of its own: its record
            // is written once, done (a progress poll in between still reports it started).
            task.inline = true;
          }
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
        error = outOfTime(toolTasks);
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
    rethrowUnlessCancelled(failure);
    cancelled = true;
    markCancelled(view.tasks);
    error = { message: "cancelled before the agent gave a final answer" };
  }
  if (answer === null && !error && !cancelled) {
    error = {
      message: `stopped after ${req.maxSteps} steps without a final answer (raise --max-steps)`,
    };
  }
  return finish(
    ctx,
    view,
    jobResult(req, "ask", {
      status: askStatus({ cancelled, answered: answer !== null, outOfBudget }),
      result: { answer, transcript: transcript(messages) },
      errors: error ? { agent: error } : {},
      usage,
      ms: await elapsed(ctx, view),
    }),
    req.retentionMs,
  );
}
