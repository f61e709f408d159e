/** Data shapes shared by the services and the CLI. Everything here is plain JSON: it is journaled. */

/** Which model a job calls. Never holds a credential: the key comes from the endpoint's environment. */
export interface ModelSpec {
  name: string;
  baseUrl?: string;
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

/** An error as data: a TerminalError inside a returned value would lose its message. */
export interface ErrorData {
  message: string;
  code?: number;
}

/** How often a task's step is tried before it fails, and how long one try may take. */
export interface RetrySettings {
  maxAttempts: number;
  initialIntervalMs: number;
  maxIntervalMs: number;
  taskTimeoutMs: number;
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
  state: TaskState;
  output?: unknown;
  error?: ErrorData;
  ms?: number;
  usage?: Usage;
  attempts?: number;
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
  ms: number;
}

/** The job's durable state, kept under the key `view` of the Job object. */
export interface JobView {
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
  ms: number;
}

/** An input refused before submission; kept in the batch so nothing the user gave is dropped silently. */
export interface BadInputResult {
  job: null;
  status: "failed";
  input: string;
  result: null;
  errors: { input: ErrorData };
  usage: Usage;
}

export const LOCAL_MODEL_NAME = "local";
export const LOCAL_MODEL_LABEL = "local (offline, deterministic; not an LLM)";
