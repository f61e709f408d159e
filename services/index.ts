/**
 * pagent's Restate services. Importing this module starts nothing: the CLI imports types only, and
 * `pagent serve`, the ephemeral runner or a serverless function (src/serverless/) hosts the
 * definitions returned by {@link createServices}.
 */
import type { GrantSource } from "./capabilities.js";
import type { Credentials } from "./llm/chat.js";
import { createChunks } from "./chunk-cache.js";
import { createJob } from "./job/service.js";
import { RateLimiters } from "./llm/rate-limit.js";
import { analysisRunner, createTasks } from "./tasks.js";
import type { ServiceSet } from "./types.js";

/**
 * The definitions one deployment hosts. Tasks holds the credentials, the tools and the grants
 * (`grants` says what jobs may use, asked again at every check), with one rate limiter per provider
 * for all its jobs. A Job hosted alone gets neither credentials nor grants: it asks the Tasks
 * deployment for the grants check (services/job/lifecycle.ts).
 */
export function createServices(
  credentials: Credentials,
  grants: GrantSource,
  which: ServiceSet = "all",
) {
  // The Chunk object asks the model itself (with the key): it is an executor, deployed with Tasks.
  const limiters = new RateLimiters();
  const executors = which !== "job";
  const tasks = executors ? createTasks(credentials, grants, limiters) : undefined;
  const chunks = executors
    ? createChunks(grants, analysisRunner(credentials, grants, limiters))
    : undefined;
  const job = which === "tasks" ? undefined : createJob(which === "all" ? grants : undefined);
  return {
    tasks,
    job,
    chunks,
    all: [...(tasks ? [tasks] : []), ...(chunks ? [chunks] : []), ...(job ? [job] : [])],
  };
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
