import type { JobBounds } from "../../services/job.js";
import {
  DEFAULT_RETRY,
  LOCAL_MODEL_NAME,
  type ModelSpec,
  type RetrySettings,
} from "../../services/types.js";
import type { ResolvedConfig } from "../config.js";
import type { App } from "../context.js";
import { UsageError } from "../errors.js";

/** Where a watching command says what holds its job up (a full disk): stderr, in every output mode. */
export function stderrWarning(app: App): (line: string) => void {
  return (line) => app.stderr.write(`pagent: ${line}\n`);
}

/** The model a job records. No model means no job: pagent never silently picks one. */
export function modelSpec(config: ResolvedConfig): ModelSpec {
  if (!config.model) {
    throw new UsageError(
      'no model configured: pass --model NAME (or set PAGENT_MODEL, or "model" in pagent.config.json), with --base-url for a non-OpenAI server; --model local runs offline',
    );
  }
  if (config.model === LOCAL_MODEL_NAME) return { name: LOCAL_MODEL_NAME };
  return config.baseUrl ? { name: config.model, baseUrl: config.baseUrl } : { name: config.model };
}

export function retrySettings(config: ResolvedConfig): RetrySettings {
  return {
    ...DEFAULT_RETRY,
    maxAttempts: config.retries,
    taskTimeoutMs: config.taskTimeoutMs,
    ...(config.maxReplyBytes !== undefined ? { maxReplyBytes: config.maxReplyBytes } : {}),
  };
}

/** The bounds the user put on the job: provider limits, time limit, token budget, and the price. */
export function jobBounds(config: ResolvedConfig, model: ModelSpec): JobBounds {
  const limits = {
    ...(config.rpm !== undefined ? { rpm: config.rpm } : {}),
    ...(config.tpm !== undefined ? { tpm: config.tpm } : {}),
  };
  const price = config.prices[model.name];
  return {
    ...(Object.keys(limits).length > 0 ? { limits } : {}),
    ...(config.timeoutMs !== undefined ? { timeoutMs: config.timeoutMs } : {}),
    ...(config.maxTokensTotal !== undefined ? { maxTokensTotal: config.maxTokensTotal } : {}),
    ...(price ? { price } : {}),
  };
}
