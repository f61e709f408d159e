/**
 * What the CLI may send the Job: every request defined once, as a zod schema. The schemas are the
 * handlers' input serde (service.ts), so a malformed request sent straight to the ingress ends at
 * once as a terminal error naming the bad field, and the request types below are inferred from them.
 */
import { z } from "zod";
import type { ToolsConfig } from "../tool-runner.js";
import type { AnalysisSpec, ErrorData, ModelSpec, Price, RetrySettings } from "../types.js";
import type { RateLimits } from "../llm/rate-limit.js";

/**
 * A shared data type (services/types.ts) as a request carries it: the fields a job relies on are
 * checked, and anything else in it is kept as sent, so adding a field there drops nothing here.
 */
function shaped<T>(fields: z.core.$ZodLooseShape): z.ZodType<T> {
  return z.looseObject(fields) as unknown as z.ZodType<T>;
}

const ms = z.number().nonnegative();

const modelSpec = shaped<ModelSpec>({
  name: z.string(),
  baseUrl: z.string().optional(),
  headers: z.record(z.string(), z.string()).optional(),
  provider: z.looseObject({ name: z.string() }).optional(),
});

const retrySettings = shaped<RetrySettings>({
  maxAttempts: z.number().int(),
  initialIntervalMs: ms,
  maxIntervalMs: ms,
  taskTimeoutMs: ms,
  maxReplyBytes: z.number().int().optional(),
});

const analysisSpec = shaped<AnalysisSpec>({
  name: z.string(),
  instruction: z.string(),
  schema: z.record(z.string(), z.unknown()),
});

const toolsConfig = shaped<ToolsConfig>({
  enabled: z.array(z.string()),
  allowRoots: z.array(z.string()),
  allowHosts: z.array(z.string()),
  commands: z.array(z.looseObject({ name: z.string() })),
  cwd: z.string(),
});

const rateLimits = shaped<RateLimits>({
  rpm: z.number().optional(),
  tpm: z.number().optional(),
});

const price = shaped<Price>({ input: z.number(), output: z.number() });

const errorData = shaped<ErrorData>({ message: z.string(), code: z.number().optional() });

/** Bounds a user may put on a job; none of them is part of a job's identity. */
const jobBounds = {
  /** The provider limits (`--rpm`, `--tpm`) this job's LLM calls ask the endpoint for. */
  limits: rateLimits.optional(),
  /** `--timeout`: the whole job's time limit. */
  timeoutMs: ms.optional(),
  /** When a batch's `--timeout` ends, as epoch ms; set by the batch on its child jobs. */
  deadlineAt: z.number().optional(),
  /** `--max-tokens-total`: no new task or turn starts once the job has used this many tokens. */
  maxTokensTotal: z.number().optional(),
  /** The model's price, to put a cost on the result. */
  price: price.optional(),
};

/** Every job has an id (its object key) and a retention. */
const jobIdentity = {
  job: z.string().min(1),
  retentionMs: ms.optional(),
};

export const AnalyzeRequestSchema = z.object({
  ...jobIdentity,
  ...jobBounds,
  input: z.string(),
  text: z.string(),
  analyses: z.array(analysisSpec),
  model: modelSpec,
  retry: retrySettings,
  /** Set when the input is longer than this many estimated tokens: it is analysed in chunks. */
  chunkTokens: z.number().int().positive().optional(),
  /** How many chunk tasks run at once (`--concurrency`). */
  concurrency: z.number().int().positive().optional(),
  /**
   * Set by a batch on an input's job when the batch already checked, in its own journal, that this
   * model is granted: one check for the batch instead of one durable step per input. Each task
   * still checks for itself, so a request that sets it by hand cannot run anything not granted.
   */
  grantsChecked: z.literal(true).optional(),
});

export const AskRequestSchema = z.object({
  ...jobIdentity,
  ...jobBounds,
  input: z.string(),
  prompt: z.string(),
  system: z.string().optional(),
  maxSteps: z.number().int().positive(),
  model: modelSpec,
  tools: toolsConfig,
  retry: retrySettings,
});

export const BatchItemSchema = z.union([
  z.object({ input: z.string(), request: AnalyzeRequestSchema }),
  z.object({ input: z.string(), error: errorData }),
]);

export const BatchRequestSchema = z.object({
  ...jobIdentity,
  items: z.array(BatchItemSchema),
  concurrency: z.number().int().positive(),
  /** `--timeout` for the whole batch: no input starts after it, and running ones stop at it. */
  timeoutMs: ms.optional(),
  /** `--max-tokens-total` for the whole batch: no input starts once finished ones used this many. */
  maxTokensTotal: z.number().optional(),
});

/** The delayed call that forgets a finished job (its retention passed). */
export const ExpireRequestSchema = z.object({ finishedAt: z.number() });

export type JobBounds = { [K in keyof typeof jobBounds]?: z.infer<(typeof jobBounds)[K]> };
export type AnalyzeRequest = z.infer<typeof AnalyzeRequestSchema>;
export type AskRequest = z.infer<typeof AskRequestSchema>;
export type BatchItem = z.infer<typeof BatchItemSchema>;
export type BatchRequest = z.infer<typeof BatchRequestSchema>;
export type ExpireRequest = z.infer<typeof ExpireRequestSchema>;
