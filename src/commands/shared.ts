import {
  DEFAULT_RETRY,
  LOCAL_MODEL_NAME,
  type ModelSpec,
  type RetrySettings,
} from "../../services/types.js";
import type { ResolvedConfig } from "../config.js";
import { UsageError } from "../errors.js";

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
  return { ...DEFAULT_RETRY, maxAttempts: config.retries, taskTimeoutMs: config.taskTimeoutMs };
}
