/**
 * pagent's Restate services. Importing this module starts nothing: the CLI imports types only, and
 * `pagent serve` (or the ephemeral runner) hosts the definitions returned by {@link createServices}.
 */
import type { GrantSource } from "./capabilities.js";
import type { Credentials } from "./llm/chat.js";
import { createChunks } from "./chunk-cache.js";
import { createJob } from "./job/service.js";
import { RateLimiters } from "./llm/rate-limit.js";
import { analysisRunner, createTasks } from "./tasks.js";

/**
 * One endpoint process hosts one set of services, so one rate limiter per provider for all its jobs.
 * `grants` says what jobs may use (services/capabilities.ts); it is asked again at every check.
 */
export function createServices(credentials: Credentials, grants: GrantSource) {
  const limiters = new RateLimiters();
  const tasks = createTasks(credentials, grants, limiters);
  const chunks = createChunks(grants, analysisRunner(credentials, grants, limiters));
  const job = createJob(grants);
  return { tasks, job, chunks, all: [tasks, job, chunks] };
}

export type { Job } from "./job/service.js";
export type {
  AnalyzeRequest,
  AskRequest,
  BatchRequest,
  BatchItem,
  JobBounds,
} from "./job/contract.js";
export type { Tasks } from "./tasks.js";
export type { Chunks } from "./chunk-cache.js";
export type { ToolsConfig } from "./tool-runner.js";
export type { Credentials } from "./llm/chat.js";
export type { RateLimits } from "./llm/rate-limit.js";
export * from "./types.js";
