import { HumanMessage, SystemMessage, type StoredMessage } from "@langchain/core/messages";
import * as restate from "@restatedev/restate-sdk";
import { schemaName, validateAnswer } from "./analyses.js";
import {
  askedByModel,
  askedByTools,
  refusal,
  type Asked,
  type GrantSource,
} from "./capabilities.js";
import { requireGranted } from "./grant-check.js";
import {
  callChat,
  toStored,
  unavailableAfterRetries,
  type ChatCall,
  type ChatOutcome,
  type Credentials,
  type ToolSpec,
} from "./llm/chat.js";
import type { RateLimiters, RateLimits } from "./llm/rate-limit.js";
import type { McpToolsOutcome, McpToolsRequest } from "./mcp/agent.js";
import { lazyMcp } from "./mcp/lazy.js";
import { runTool, type ToolCallRequest, type ToolCallOutcome } from "./tool-runner.js";
import {
  addUsage,
  MAX_TASK_TIMEOUT_MS,
  stepRetryPolicy,
  TASKS_SERVICE,
  ZERO_USAGE,
  type AnalysisSpec,
  type ModelSpec,
  type RetrySettings,
  type Usage,
} from "./types.js";

/** How many times a structurally invalid answer is sent back to the model with the validation error. */
export const MAX_VALIDATION_ROUNDS = 3;

export interface AnalysisRequest {
  job: string;
  analysis: AnalysisSpec;
  text: string;
  model: ModelSpec;
  retry: RetrySettings;
  limits?: RateLimits;
  /** Tokens this analysis may use before it stops sending invalid answers back (`--max-tokens-total`). */
  tokenBudget?: number;
}

export interface AnalysisOutcome {
  output: unknown;
  usage: Usage;
  ms: number;
  llmCalls: number;
  /** Requests sent to the provider, retries included (see {@link llmStep}). */
  attempts?: number;
}

export interface LlmTurnRequest {
  job: string;
  turn: number;
  model: ModelSpec;
  messages: StoredMessage[];
  tools: ToolSpec[];
  retry: RetrySettings;
  limits?: RateLimits;
}

interface StoredToolCall {
  id?: string;
  name?: string;
  args?: unknown;
}

/**
 * A tool call whose arguments are not valid JSON lands in the message's `invalid_tool_calls`, not in
 * `toolCalls`: the model would never get an answer to it, and a turn made only of such calls would
 * end the job "done" with an empty answer. They become ordinary calls carrying their raw argument
 * text, so the tool reports "invalid arguments … not valid JSON" and the model can try again; in the
 * message they get `{}` arguments, so the history sent back to the provider stays well formed.
 */
export function withInvalidToolCalls(outcome: ChatOutcome): ChatOutcome {
  const data = outcome.message.data as {
    tool_calls?: StoredToolCall[];
    invalid_tool_calls?: StoredToolCall[];
  };
  const invalid = data.invalid_tool_calls ?? [];
  if (invalid.length === 0) return outcome;
  const taken = new Set(outcome.toolCalls.map((tc) => tc.id));
  const calls = invalid.map((tc, i) => {
    let id = tc.id ?? `call_invalid_${i}`;
    while (taken.has(id)) id = `${id}_`;
    taken.add(id);
    const raw = typeof tc.args === "string" ? tc.args : JSON.stringify(tc.args ?? null);
    return { id, name: tc.name ?? "", raw };
  });
  return {
    ...outcome,
    message: {
      ...outcome.message,
      data: {
        ...outcome.message.data,
        tool_calls: [
          ...(data.tool_calls ?? []),
          ...calls.map((c) => ({ id: c.id, name: c.name, args: {}, type: "tool_call" })),
        ],
        invalid_tool_calls: [],
      } as StoredMessage["data"],
    },
    toolCalls: [
      ...outcome.toolCalls,
      // The raw text, not an object: the tool's argument parser says what is wrong with it.
      ...calls.map((c) => ({
        id: c.id,
        name: c.name,
        args: c.raw as unknown as Record<string, unknown>,
      })),
    ],
  };
}

/** Provider requests of the LLM steps now running in this endpoint, by invocation and step. */
const stepAttempts = new Map<string, number>();

/**
 * One LLM call as a durable step. Its result records how many requests it took (Restate's
 * invocation table forgets an invocation's retry count once it completes, and `pagent status` shows
 * it after that); the count lives in this process, so a step retried across an endpoint restart
 * counts from there. A step that exhausts its retries without reaching the provider fails as
 * "provider unavailable".
 */
async function llmStep(
  ctx: restate.Context,
  name: string,
  call: () => Promise<ChatOutcome>,
  retry: RetrySettings,
  /** Requests the task's earlier steps took, so a failure reports the task's total. */
  before = 0,
): Promise<ChatOutcome> {
  const key = `${ctx.request().id}/${name}`;
  try {
    return await ctx.run(
      name,
      async () => {
        const attempts = (stepAttempts.get(key) ?? 0) + 1;
        stepAttempts.set(key, attempts);
        const outcome = await call();
        stepAttempts.delete(key);
        return { ...outcome, attempts };
      },
      stepRetryPolicy(retry),
    );
  } catch (error) {
    const attempts = before + (stepAttempts.get(key) ?? 0);
    stepAttempts.delete(key);
    throw withAttempts(unavailableAfterRetries(error), attempts);
  }
}

/** A task's failure carries the requests it took as metadata, for `pagent status`. */
function withAttempts(error: unknown, attempts: number): unknown {
  if (!(error instanceof restate.TerminalError) || error instanceof restate.CancelledError)
    return error;
  if (attempts <= 0) return error;
  return new restate.TerminalError(error.message, {
    errorCode: error.code,
    metadata: { ...error.metadata, attempts: String(attempts) },
  });
}

/** The bounds of an invocation that runs a task's steps (Tasks, and the Chunk object's map tasks). */
export const TASK_OPTIONS = {
  // A step sends Restate nothing while it runs, and Restate aborts an attempt that stays silent
  // for inactivityTimeout + abortTimeout. One step is the wait in the provider's rate-limit queue
  // plus one call of up to --task-timeout (at most MAX_TASK_TIMEOUT_MS, 15 min; enforced by the
  // CLI): twice that leaves the queue at least 15 minutes before a long call would be cut off.
  inactivityTimeout: 2 * MAX_TASK_TIMEOUT_MS,
  abortTimeout: { minutes: 1 },
  // ctx.run bounds each step; this bounds a handler that fails outside a step (a bug) so it cannot retry forever.
  retryPolicy: {
    maxAttempts: 50,
    onMaxAttempts: "kill" as const,
    initialInterval: 500,
    maxInterval: 10_000,
  },
};

/** One LLM call of a task: the task's time limit, reply bound and provider limits, this attempt's signal. */
function chatWith(credentials: Credentials, limiters?: RateLimiters) {
  return (
    ctx: restate.Context,
    task: { retry: RetrySettings; limits?: RateLimits },
    call: Pick<ChatCall, "model" | "messages" | "tools" | "responseFormat">,
  ) =>
    callChat(
      {
        ...call,
        timeoutMs: task.retry.taskTimeoutMs,
        maxReplyBytes: task.retry.maxReplyBytes,
        limits: task.limits,
      },
      credentials,
      ctx.request().attemptCompletedSignal,
      limiters,
    );
}

/**
 * One analysis of one text, its LLM calls as durable steps of the calling invocation: the handler
 * of Tasks.analysis, and of a long input's chunk in the Chunk object (services/chunk-cache.ts).
 */
export function analysisRunner(
  credentials: Credentials,
  grants: GrantSource,
  limiters?: RateLimiters,
) {
  const chat = chatWith(credentials, limiters);
  return async (ctx: restate.Context, req: AnalysisRequest): Promise<AnalysisOutcome> => {
    // Checked here too, not only by the job: anyone who reaches the ingress can call a task.
    requireGranted(grants(), askedByModel(req.model));
    const messages = toStored([
      new SystemMessage(
        `${req.analysis.instruction}\nAnswer only with a JSON value that matches the given JSON schema, no prose.`,
      ),
      new HumanMessage(req.text),
    ]);
    let usage = ZERO_USAGE;
    let ms = 0;
    let attempts = 0;
    let lastError = "";
    for (let round = 1; round <= MAX_VALIDATION_ROUNDS; round++) {
      if (round > 1 && req.tokenBudget !== undefined && usage.total >= req.tokenBudget) {
        throw withAttempts(
          new restate.TerminalError(
            `token budget exhausted (${usage.total} of --max-tokens-total ${req.tokenBudget} tokens used) before asking again: ${lastError}`,
          ),
          attempts,
        );
      }
      const outcome = await llmStep(
        ctx,
        `llm ${req.analysis.name} #${round}`,
        () =>
          chat(ctx, req, {
            model: req.model,
            messages,
            responseFormat: {
              name: schemaName(req.analysis.name),
              schema: req.analysis.schema,
            },
          }),
        req.retry,
        attempts,
      );
      usage = addUsage(usage, outcome.usage);
      ms += outcome.ms;
      attempts += outcome.attempts ?? 1;
      const verdict = validateAnswer(req.analysis, outcome.content);
      if (verdict.ok) return { output: verdict.value, usage, ms, llmCalls: round, attempts };
      lastError = verdict.error;
      messages.push(
        outcome.message,
        ...toStored([
          new HumanMessage(
            `That answer was invalid: ${verdict.error}. Answer again with only JSON that matches the schema.`,
          ),
        ]),
      );
    }
    throw withAttempts(
      new restate.TerminalError(
        `the model gave no valid answer in ${MAX_VALIDATION_ROUNDS} tries: ${lastError}`,
      ),
      attempts,
    );
  };
}

/**
 * Each task is its own invocation, so a task that fails and retries never replays a sibling:
 * a retryable failure inside one invocation would discard every `ctx.run` still in flight beside it.
 */
export function createTasks(
  credentials: Credentials,
  grants: GrantSource,
  limiters?: RateLimiters,
) {
  // One pool of MCP connections for every job of this endpoint; servers start on first use.
  const mcp = lazyMcp(credentials.env ?? {});
  const chat = chatWith(credentials, limiters);
  const analysis = analysisRunner(credentials, grants, limiters);
  return restate.service({
    name: TASKS_SERVICE,
    handlers: {
      analysis: (ctx: restate.Context, req: AnalysisRequest): Promise<AnalysisOutcome> =>
        analysis(ctx, req),

      llmTurn: async (ctx: restate.Context, req: LlmTurnRequest): Promise<ChatOutcome> => {
        requireGranted(grants(), askedByModel(req.model));
        return withInvalidToolCalls(
          await llmStep(
            ctx,
            `llm turn ${req.turn}`,
            () => chat(ctx, req, { model: req.model, messages: req.messages, tools: req.tools }),
            req.retry,
          ),
        );
      },

      tool: async (ctx: restate.Context, req: ToolCallRequest): Promise<ToolCallOutcome> => {
        const granted = grants();
        requireGranted(granted, askedByTools(req.tools));
        if (req.mcp) return mcp.call(ctx, { ...req, mcp: req.mcp });
        return runTool(ctx, req, granted.roots);
      },

      mcpTools: async (ctx: restate.Context, req: McpToolsRequest): Promise<McpToolsOutcome> => {
        requireGranted(grants(), { mcpServers: req.servers });
        return mcp.listTools(ctx, req);
      },

      /**
       * The job's up-front grants check when the Job is deployed apart from Tasks: the grants live
       * with the executors, so they answer. The refusal, or null when everything asked is granted.
       * Only the Job calls it (ingress-private); every task still checks for itself.
       */
      checkGrants: restate.handlers.handler(
        { ingressPrivate: true },
        (_ctx: restate.Context, asked: Asked): Promise<string | null> =>
          Promise.resolve(refusal(grants(), asked) ?? null),
      ),
    },
    options: TASK_OPTIONS,
  });
}

export type Tasks = ReturnType<typeof createTasks>;
