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
import { runTool, type ToolCallRequest, type ToolCallOutcome } from "./tool-runner.js";
import {
  addUsage,
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
}

export function runOptions(retry: RetrySettings): restate.RunOptions<ChatOutcome> {
  return {
    maxRetryAttempts: retry.maxAttempts,
    initialRetryInterval: retry.initialIntervalMs,
    maxRetryInterval: retry.maxIntervalMs,
  };
}

/**
 * Each task is its own invocation, so a task that fails and retries never replays a sibling:
 * a retryable failure inside one invocation would discard every `ctx.run` still in flight beside it.
 */
export function createTasks(credentials: Credentials) {
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
                },
                credentials,
                ctx.request().attemptCompletedSignal,
              ),
            runOptions(req.retry),
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
        ctx.run(
          `llm turn ${req.turn}`,
          () =>
            callChat(
              {
                model: req.model,
                messages: req.messages,
                tools: req.tools,
                timeoutMs: req.retry.taskTimeoutMs,
              },
              credentials,
              ctx.request().attemptCompletedSignal,
            ),
          runOptions(req.retry),
        ),

      tool: async (ctx: restate.Context, req: ToolCallRequest): Promise<ToolCallOutcome> =>
        runTool(ctx, req),
    },
    options: {
      // An LLM call may legitimately take minutes; Restate must not abort it as inactive.
      inactivityTimeout: { minutes: 15 },
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
