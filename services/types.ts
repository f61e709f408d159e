/** Data shapes shared by the services and the CLI. Everything here is plain JSON: it is journaled. */

/** Which model a job calls. Never holds a credential: the key comes from the endpoint's environment. */
export interface ModelSpec {
  name: string;
  baseUrl?: string;
  /** Extra headers of every call, values as written: `${VAR}` is expanded only by the endpoint. */
  headers?: Record<string, string>;
  /** The provider profile the model is reached through; the endpoint must have granted exactly this one. */
  provider?: ProviderSpec;
}

/**
 * A named provider profile (config `providers`) as a job records it: its non-secret settings. The key
 * is read by the endpoint from `apiKeyEnv` (default OPENAI_API_KEY); header values are unexpanded.
 */
export interface ProviderSpec {
  name: string;
  /** "openai" (any OpenAI-compatible server, the default) or "azure" (Azure OpenAI). */
  type?: "openai" | "azure";
  baseUrl?: string;
  headers?: Record<string, string>;
  query?: Record<string, string>;
  apiKeyEnv?: string;
  /** Azure: `https://NAME.openai.azure.com`, the deployment, and the `api-version` query value. */
  endpoint?: string;
  deployment?: string;
  apiVersion?: string;
}

/** Token counts as reported by the provider's `usage`. */
export interface Usage {
  input: number;
  output: number;
  total: number;
}

export const ZERO_USAGE: Usage = { input: 0, output: 0, total: 0 };

export function addUsage(a: Usage, b: Usage | undefined): Usage {
  if (!b) return a;
  return { input: a.input + b.input, output: a.output + b.output, total: a.total + b.total };
}

/** A model's price in USD per million tokens (config `prices`). */
export interface Price {
  input: number;
  output: number;
}

/** What `usage` cost at `price`, in USD (rounded to 1e-8 so sums print without float noise). */
export function costOf(usage: Usage, price: Price | undefined): number | undefined {
  if (!price) return undefined;
  return roundUsd((usage.input * price.input + usage.output * price.output) / 1_000_000);
}

export function roundUsd(usd: number): number {
  return Math.round(usd * 1e8) / 1e8;
}

/** An error as data: a TerminalError inside a returned value would lose its message. */
export interface ErrorData {
  message: string;
  code?: number;
}

/**
 * The error code of a task whose provider stayed unreachable (connection refused, DNS, TLS) or
 * answered only 5xx through every retry: the CLI exits 69 when nothing else failed.
 */
export const PROVIDER_UNAVAILABLE = 503;

/** How often a task's step is tried before it fails, and how long one try may take. */
export interface RetrySettings {
  maxAttempts: number;
  initialIntervalMs: number;
  maxIntervalMs: number;
  taskTimeoutMs: number;
  /** The largest LLM reply a step may journal (`maxReplyBytes`); default DEFAULT_MAX_REPLY_BYTES. */
  maxReplyBytes?: number;
}

/**
 * One LLM reply is journaled as one Restate entry, and Restate refuses a message over 32 MiB
 * (`worker.invoker.message-size-limit` in restate-server 1.7, warning from 10 MiB): a bigger reply
 * could never be journaled and would be asked again on every retry of the invocation. 4 MiB is far
 * more than any model's longest answer (about 1M tokens) and leaves room for the task's input.
 */
export const DEFAULT_MAX_REPLY_BYTES = 4 * 1024 * 1024;
/** The most `maxReplyBytes` may be: half of Restate's message limit, the other half for the input. */
export const MAX_REPLY_BYTES_LIMIT = 16 * 1024 * 1024;

/**
 * The longest `--task-timeout` pagent accepts. The Tasks handlers' Restate inactivity timeout is
 * derived from it (services/tasks.ts): Restate aborts a step that stays silent for longer.
 */
export const MAX_TASK_TIMEOUT_MS = 15 * 60_000;

/**
 * A step's retry policy (`ctx.run` options). For RetryableErrors the SDK (1.17) applies only
 * maxRetryAttempts: the delay is the provider's Retry-After when it gave one, else the Tasks
 * handler's retry policy (0.5 s doubling to 10 s); the intervals here apply to other errors.
 */
export function stepRetryPolicy(retry: RetrySettings): {
  maxRetryAttempts: number;
  initialRetryInterval: number;
  maxRetryInterval: number;
} {
  return {
    maxRetryAttempts: retry.maxAttempts,
    initialRetryInterval: retry.initialIntervalMs,
    maxRetryInterval: retry.maxIntervalMs,
  };
}

export const DEFAULT_RETRY: RetrySettings = {
  maxAttempts: 5,
  initialIntervalMs: 500,
  maxIntervalMs: 10_000,
  taskTimeoutMs: 120_000,
};

/** One analysis to run: a built-in or a user-defined one, with the JSON schema of its output. */
export interface AnalysisSpec {
  name: string;
  instruction: string;
  schema: Record<string, unknown>;
  /** How the results of a long input's chunks become one (services/chunking.ts); a default if unset. */
  reduce?: string;
}

export type TaskKind = "analysis" | "llm" | "tool";
export type TaskState = "queued" | "running" | "done" | "failed" | "cancelled";

/** What the job knows of one task. Live detail (retrying, attempts) comes from Restate's invocation table. */
export interface TaskView {
  id: string;
  name: string;
  kind: TaskKind;
  args?: unknown;
  invocationId?: string;
  /** Ran as a step of the job's own invocation (a pure tool), so it has no invocation of its own. */
  inline?: boolean;
  state: TaskState;
  output?: unknown;
  error?: ErrorData;
  ms?: number;
  usage?: Usage;
  attempts?: number;
  /** A long input's map task: the index of its chunk (from 0); the analysis's reduce has none. */
  chunk?: number;
  /** A map task whose result an earlier job had already asked for (same analysis, model, chunk). */
  reused?: true;
}

export type JobKind = "analyze" | "ask" | "batch";
export type JobStatus = "running" | "done" | "partial" | "failed" | "cancelled";

/** The final record of a job: what `--json` prints. */
export interface JobResult {
  job: string;
  kind: "analyze" | "ask";
  status: JobStatus;
  input: string;
  model: ModelSpec & { offline?: boolean };
  result: unknown;
  errors: Record<string, ErrorData>;
  usage: Usage;
  /** USD, when the config has a price for the model. */
  cost?: number;
  ms: number;
  /** A long input, analysed in chunks: how many. */
  chunks?: number;
  /** Of the map tasks (chunks × analyses), how many took an earlier job's result. */
  reusedChunks?: number;
  /** A chunked job's tokens by analysis, its map and reduce steps together. */
  usageByAnalysis?: Record<string, Usage>;
}

/** The job's durable state in the Job object; services/job/view-store.ts knows its keys. */
export interface JobView {
  /** The layout version (services/job/view-store.ts reads every older one). */
  v: 1;
  job: string;
  kind: JobKind;
  status: JobStatus;
  invocationId: string;
  createdAt: number;
  finishedAt?: number;
  input: string;
  model: ModelSpec;
  /** Attempts each step gets, for "retrying n/m". */
  maxAttempts?: number;
  tasks: TaskView[];
  /** For a batch: the child jobs, in input order. */
  children?: BatchChildView[];
  result?: JobResult | BatchResult;
}

export interface BatchChildView {
  job?: string;
  input: string;
  state: TaskState;
  error?: ErrorData;
}

export interface BatchResult {
  job: string;
  kind: "batch";
  status: JobStatus;
  items: (JobResult | BadInputResult)[];
  usage: Usage;
  /** USD, the sum over the items that have a cost. */
  cost?: number;
  ms: number;
}

/**
 * An input refused before submission, or one a batch never started (cancelled, out of time or out of
 * token budget: `notRun`); kept in the batch so nothing the user gave is dropped silently.
 */
export interface BadInputResult {
  job: null;
  status: "failed";
  input: string;
  result: null;
  errors: { input: ErrorData };
  usage: Usage;
  notRun?: true;
}

/** Name of the Restate virtual object that holds every job, keyed by job id. */
export const JOB_SERVICE = "Job";
/** Name of the Restate service that runs each task (an analysis, an LLM turn, a tool call). */
export const TASKS_SERVICE = "Tasks";

/** Which of pagent's services one deployment hosts: the `Job` orchestrator, the `Tasks` executors, or both. */
export type ServiceSet = "job" | "tasks" | "all";
export const SERVICE_SETS: readonly ServiceSet[] = ["job", "tasks", "all"];
/** Name of the Restate virtual object that keeps each chunk's map result, keyed by its content. */
export const CHUNK_SERVICE = "Chunk";
/** Every service an endpoint hosts, as Restate knows them. */
export const SERVICE_NAMES = [JOB_SERVICE, TASKS_SERVICE, CHUNK_SERVICE] as const;

export const LOCAL_MODEL_NAME = "local";
export const LOCAL_MODEL_LABEL = "local (offline, deterministic; not an LLM)";
