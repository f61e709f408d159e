import { HumanMessage, SystemMessage, type StoredMessage } from "@langchain/core/messages";
import * as restate from "@restatedev/restate-sdk";
import { schemaName, validateAnswer } from "./analyses.js";
import {
  callChat,
  toStored,
  type ChatOutcome,
  type Credentials,
  type ToolSpec,
} from "./llm/chat.js";
import type { RateLimiters, RateLimits } from "./llm/rate-limit.js";
import { runTool, type ToolCallRequest, type ToolCallOutcome } from "./tool-runner.js";
import {
  addUsage,
  MAX_TASK_TIMEOUT_MS,
  stepRetryPolicy,
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

/**
 * Each task is its own invocation, so a task that fails and retries never replays a sibling:
 * a retryable failure inside one invocation would discard every `ctx.run` still in flight beside it.
 */
export function createTasks(credentials: Credentials, limiters?: RateLimiters) {
  return restate.service({
    name: "Tasks",
    handlers: {
      analysis: async (ctx: restate.Context, req: AnalysisRequest): Promise<AnalysisOutcome> => {
        const messages = toStored([
          new SystemMessage(
            `${req.analysis.instruction}\nAnswer only with a JSON value that matches the given JSON schema, no prose.`,
          ),
          new HumanMessage(req.text),
        ]);
        let usage = ZERO_USAGE;
        let ms = 0;
        let lastError = "";
        for (let round = 1; round <= MAX_VALIDATION_ROUNDS; round++) {
          if (round > 1 && req.tokenBudget !== undefined && usage.total >= req.tokenBudget) {
            throw new restate.TerminalError(
              `token budget exhausted (${usage.total} of --max-tokens-total ${req.tokenBudget} tokens used) before asking again: ${lastError}`,
            );
          }
          const outcome = await ctx.run(
            `llm ${req.analysis.name} #${round}`,
            () =>
              callChat(
                {
                  model: req.model,
                  messages,
                  responseFormat: {
                    name: schemaName(req.analysis.name),
                    schema: req.analysis.schema,
                  },
                  timeoutMs: req.retry.taskTimeoutMs,
                  maxReplyBytes: req.retry.maxReplyBytes,
                  limits: req.limits,
                },
                credentials,
                ctx.request().attemptCompletedSignal,
                limiters,
              ),
            stepRetryPolicy(req.retry),
          );
          usage = addUsage(usage, outcome.usage);
          ms += outcome.ms;
          const verdict = validateAnswer(req.analysis, outcome.content);
          if (verdict.ok) return { output: verdict.value, usage, ms, llmCalls: round };
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
        throw new restate.TerminalError(
          `the model gave no valid answer in ${MAX_VALIDATION_ROUNDS} tries: ${lastError}`,
        );
      },

      llmTurn: async (ctx: restate.Context, req: LlmTurnRequest): Promise<ChatOutcome> =>
        withInvalidToolCalls(
          await ctx.run(
            `llm turn ${req.turn}`,
            () =>
              callChat(
                {
                  model: req.model,
                  messages: req.messages,
                  tools: req.tools,
                  timeoutMs: req.retry.taskTimeoutMs,
                  maxReplyBytes: req.retry.maxReplyBytes,
                  limits: req.limits,
                },
                credentials,
                ctx.request().attemptCompletedSignal,
                limiters,
              ),
            stepRetryPolicy(req.retry),
          ),
        ),

      tool: async (ctx: restate.Context, req: ToolCallRequest): Promise<ToolCallOutcome> =>
        runTool(ctx, req),
    },
    options: {
      // A step sends Restate nothing while it runs, and Restate aborts an attempt that stays silent
      // for inactivityTimeout + abortTimeout. One step is the wait in the provider's rate-limit queue
      // plus one call of up to --task-timeout (at most MAX_TASK_TIMEOUT_MS, 15 min; enforced by the
      // CLI): twice that leaves the queue at least 15 minutes before a long call would be cut off.
      inactivityTimeout: 2 * MAX_TASK_TIMEOUT_MS,
      abortTimeout: { minutes: 1 },
      // ctx.run bounds each step; this bounds a handler that fails outside a step (a bug) so it cannot retry forever.
      retryPolicy: {
        maxAttempts: 50,
        onMaxAttempts: "kill",
        initialInterval: 500,
        maxInterval: 10_000,
      },
    },
  });
}

export type Tasks = ReturnType<typeof createTasks>;
