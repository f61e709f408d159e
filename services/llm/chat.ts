import type { BaseChatModel } from "@langchain/core/language_models/chat_models";
import type { AIMessage } from "@langchain/core/messages";
import {
  mapChatMessagesToStoredMessages,
  mapStoredMessagesToChatMessages,
  type BaseMessage,
  type StoredMessage,
} from "@langchain/core/messages";
import { RetryableError, TerminalError } from "@restatedev/restate-sdk";
import { deadline } from "../deadline.js";
import { formatDuration } from "../duration.js";
import { DEFAULT_BASE_URL } from "../capabilities.js";
import {
  DEFAULT_MAX_REPLY_BYTES,
  LOCAL_MODEL_NAME,
  PROVIDER_UNAVAILABLE,
  type ModelSpec,
  type Usage,
} from "../types.js";
import {
  clientSettings,
  errorBodyFetch,
  type ClientSettings,
  type Credentials,
} from "./providers.js";
import { estimateTokens, type RateLimiters, type RateLimits } from "./rate-limit.js";

export type { Credentials } from "./providers.js";

/** An OpenAI-format function tool definition, as sent to the model. */
export interface ToolSpec {
  type: "function";
  function: { name: string; description: string; parameters: Record<string, unknown> };
}

export interface ChatCall {
  model: ModelSpec;
  messages: StoredMessage[];
  tools?: ToolSpec[];
  responseFormat?: { name: string; schema: Record<string, unknown> };
  timeoutMs: number;
  /** The largest reply that may be journaled; see DEFAULT_MAX_REPLY_BYTES. */
  maxReplyBytes?: number;
  /** The job's provider limits; the endpoint's shared limiter for this provider applies them. */
  limits?: RateLimits;
}

/** The journaled outcome of one LLM call: plain data, so it survives the JSON round trip of `ctx.run`. */
export interface ChatOutcome {
  message: StoredMessage;
  content: string;
  toolCalls: { id: string; name: string; args: Record<string, unknown> }[];
  usage: Usage;
  ms: number;
  /** Requests this call took, retries included (set by the step that made it). */
  attempts?: number;
}

/**
 * One client per model and settings for the life of the endpoint: a new ChatOpenAI per call would
 * open a new connection pool (TCP + TLS handshakes) for every LLM call of a large batch. Keyed by the
 * expanded settings, so a changed header variable or key gets a new client.
 */
const models = new Map<string, Promise<BaseChatModel>>();

function chatModel(spec: ModelSpec, settings: ClientSettings): Promise<BaseChatModel> {
  const key = JSON.stringify([spec.name, settings]);
  let model = models.get(key);
  if (!model) {
    model = createChatModel(spec, settings);
    models.set(key, model);
    model.catch(() => models.delete(key));
  }
  return model;
}

async function createChatModel(spec: ModelSpec, settings: ClientSettings): Promise<BaseChatModel> {
  if (spec.name === LOCAL_MODEL_NAME) {
    const { LocalChatModel } = await import("./local-model.js");
    return new LocalChatModel();
  }
  const { AzureChatOpenAI, ChatOpenAI } = await import("@langchain/openai");
  // Restate owns retries: a retry inside the client would hide failures from the journal.
  const common = { model: spec.name, maxRetries: 0 };
  const configuration = {
    defaultHeaders: settings.headers,
    defaultQuery: settings.query,
    fetch: errorBodyFetch,
  };
  // OpenAI-compatible local servers (Ollama, vLLM, llama.cpp) accept any key, but the clients insist on one.
  const apiKey = settings.apiKey ?? "unset";
  if (settings.azure) {
    // Every field is given, so none is filled from the endpoint's AZURE_OPENAI_* variables; the
    // client sends the key as `api-key` (no Bearer) and adds `api-version` to every call.
    return new AzureChatOpenAI({
      ...common,
      azureOpenAIApiKey: apiKey,
      azureOpenAIBasePath: settings.azure.basePath,
      azureOpenAIApiDeploymentName: settings.azure.deployment,
      azureOpenAIApiVersion: settings.azure.apiVersion,
      configuration,
    });
  }
  return new ChatOpenAI({
    ...common,
    apiKey,
    // Always the base URL the job names (and the grants checked), never one from the endpoint's
    // environment (OPENAI_BASE_URL), which the client would otherwise pick up on its own.
    configuration: { ...configuration, baseURL: settings.baseUrl },
  });
}

export function toStored(messages: BaseMessage[]): StoredMessage[] {
  return mapChatMessagesToStoredMessages(messages);
}

export function fromStored(messages: StoredMessage[]): BaseMessage[] {
  return mapStoredMessagesToChatMessages(messages);
}

function contentText(message: AIMessage): string {
  const { content } = message;
  if (typeof content === "string") return content;
  return content
    .map((part) => (typeof part === "object" && "text" in part ? String(part.text) : ""))
    .join("");
}

/**
 * Calls the model once. Throws RetryableError / TerminalError so Restate decides what happens next;
 * every failure goes through {@link classifyLlmError}, so no raw provider error (whose message,
 * body or headers may echo the key) ever reaches Restate's journal or a log.
 */
export async function callChat(
  call: ChatCall,
  credentials: Credentials,
  attemptSignal: AbortSignal,
  limiters?: RateLimiters,
): Promise<ChatOutcome> {
  let settings: ClientSettings;
  try {
    settings = clientSettings(call.model, credentials);
  } catch (error) {
    // A header names a variable the endpoint does not have: no retry can set it.
    throw new TerminalError(`LLM request not sent: ${(error as Error).message}`);
  }
  let outcome: ChatOutcome;
  try {
    outcome = await callChatOnce(call, settings, attemptSignal, limiters);
  } catch (error) {
    throw classifyLlmError(
      error,
      call.timeoutMs,
      attemptSignal,
      settings.secrets,
      settings.baseUrl,
    );
  }
  return boundReply(outcome, call.maxReplyBytes ?? DEFAULT_MAX_REPLY_BYTES);
}

/**
 * Fails the step for good when its journal entry would be too big: journaling it would fail outside
 * the step's retry policy, so the whole invocation would retry, asking the model again each time,
 * regardless of --retries. A model that answered this much once is no transient failure.
 */
export function boundReply(outcome: ChatOutcome, maxReplyBytes: number): ChatOutcome {
  const bytes = Buffer.byteLength(JSON.stringify(outcome));
  if (bytes <= maxReplyBytes) return outcome;
  const mib = (n: number) => `${(n / 1024 / 1024).toFixed(1)} MiB`;
  throw new TerminalError(
    `the model's reply is too large to keep: ${mib(bytes)} as a journal entry, over maxReplyBytes (${mib(maxReplyBytes)}); ask for a shorter answer or raise maxReplyBytes`,
  );
}

async function callChatOnce(
  call: ChatCall,
  settings: ClientSettings,
  attemptSignal: AbortSignal,
  limiters: RateLimiters | undefined,
): Promise<ChatOutcome> {
  const model = await chatModel(call.model, settings);
  const runnable =
    call.tools && call.tools.length > 0 && model.bindTools ? model.bindTools(call.tools) : model;
  const options: Record<string, unknown> = {};
  if (call.responseFormat) {
    const responseFormat = {
      type: "json_schema",
      json_schema: { name: call.responseFormat.name, schema: call.responseFormat.schema },
    };
    // The OpenAI client JSON.parses a json_schema answer itself and throws on invalid JSON, which
    // would look like a transport failure and be retried blind. The caller validates the raw text
    // and sends the error back to the model, so the client's parse must never throw (not sent).
    Object.defineProperty(responseFormat, "$parseRaw", { value: () => null, enumerable: false });
    options.response_format = responseFormat;
  }
  // Wait for the provider's shared rate limit first (only the attempt's end stops the wait), so a
  // big batch slows down instead of hammering the provider; the task timeout starts after it.
  const grant =
    limiters && call.model.name !== LOCAL_MODEL_NAME
      ? await limiters
          .for(call.model)
          .acquire(
            estimateTokens([call.messages, call.tools, call.responseFormat]),
            call.limits ?? {},
            attemptSignal,
          )
      : undefined;
  const limit = deadline(attemptSignal, call.timeoutMs);
  options.signal = limit.signal;
  const started = performance.now();
  let reply: AIMessage;
  try {
    reply = await runnable.invoke(fromStored(call.messages), options);
  } catch (error) {
    grant?.settle(undefined);
    throw error;
  } finally {
    limit.clear();
  }
  const ms = Math.round(performance.now() - started);
  const meta = reply.usage_metadata;
  grant?.settle(meta?.total_tokens);
  return {
    message: toStored([reply])[0]!,
    content: contentText(reply),
    toolCalls: (reply.tool_calls ?? []).map((tc, i) => ({
      id: tc.id ?? `call_${i}`,
      name: tc.name,
      args: tc.args,
    })),
    usage: {
      input: meta?.input_tokens ?? 0,
      output: meta?.output_tokens ?? 0,
      total: meta?.total_tokens ?? 0,
    },
    ms,
  };
}

function headerValue(headers: unknown, name: string): string | undefined {
  if (!headers) return undefined;
  if (typeof (headers as Headers).get === "function")
    return (headers as Headers).get(name) ?? undefined;
  const value = (headers as Record<string, unknown>)[name];
  return typeof value === "string" ? value : undefined;
}

/** Seconds or an HTTP date in Retry-After, or OpenAI's `x-ratelimit-reset-*` durations like `1.5s`/`20ms`. */
export function retryAfterMs(headers: unknown, now = Date.now()): number | undefined {
  const retryAfter = headerValue(headers, "retry-after-ms");
  if (retryAfter && Number.isFinite(Number(retryAfter))) return Number(retryAfter);
  const value = headerValue(headers, "retry-after");
  if (value) {
    const seconds = Number(value);
    if (Number.isFinite(seconds)) return Math.max(0, seconds * 1000);
    const date = Date.parse(value);
    if (Number.isFinite(date)) return Math.max(0, date - now);
  }
  const reset =
    headerValue(headers, "x-ratelimit-reset-requests") ??
    headerValue(headers, "x-ratelimit-reset-tokens");
  if (reset) return goDurationMs(reset.trim());
  return undefined;
}

const DURATION_UNITS: Record<string, number> = { h: 3_600_000, m: 60_000, s: 1000, ms: 1 };

/** OpenAI writes reset times as Go durations: `20ms`, `1.5s`, `6m0s`, `1h2m3s`; a bare number is seconds. */
export function goDurationMs(text: string): number | undefined {
  if (/^\d+(\.\d+)?$/.test(text)) return Number(text) * 1000;
  const parts = [...text.matchAll(/(\d+(?:\.\d+)?)(ms|h|m|s)/g)];
  if (parts.length === 0 || parts.map((p) => p[0]).join("") !== text) return undefined;
  return parts.reduce((sum, p) => sum + Number(p[1]) * DURATION_UNITS[p[2]!]!, 0);
}

/** What a connection failure was (ECONNREFUSED, ENOTFOUND, a TLS error), from the error's causes. */
function networkCode(error: unknown): string | undefined {
  for (let e = error as { code?: unknown; cause?: unknown } | undefined, i = 0; e && i < 5; i++) {
    if (typeof e.code === "string") return e.code;
    e = e.cause as typeof e;
  }
  return undefined;
}

/**
 * A step's last failure, once Restate gave up retrying it: when the provider never answered
 * (connection refused, DNS, TLS) or answered only 5xx, the provider is unavailable (exit 69), not
 * the job's own failure; the message names the base URL (never the key) and what to check.
 */
export function unavailableAfterRetries(error: unknown): unknown {
  if (!(error instanceof TerminalError) || error.code === PROVIDER_UNAVAILABLE) return error;
  if (!/^(provider unreachable at |HTTP 5\d\d from )/.test(error.message)) return error;
  return new TerminalError(
    `${error.message} (check --base-url, the network, and the provider's status page)`,
    { errorCode: PROVIDER_UNAVAILABLE },
  );
}

/** Maps a provider failure to what Restate should do: retry (maybe after a delay) or give up. */
export function classifyLlmError(
  error: unknown,
  timeoutMs: number,
  attemptSignal?: AbortSignal,
  secrets?: string | readonly string[],
  baseUrl = DEFAULT_BASE_URL,
): RetryableError | TerminalError {
  const err = error as {
    status?: number;
    headers?: unknown;
    message?: string;
    name?: string;
    code?: string;
  };
  const status = typeof err.status === "number" ? err.status : undefined;
  const message = redact(String(err.message ?? error), secrets);
  if (attemptSignal?.aborted) return new RetryableError("attempt aborted by Restate");
  if (status === undefined) {
    if (err.name === "TimeoutError" || /timed? ?out|aborted/i.test(message)) {
      return new RetryableError(`LLM call timed out after ${timeoutMs} ms`);
    }
    const code = networkCode(error);
    return new RetryableError(
      `provider unreachable at ${redact(baseUrl, secrets)}${code ? ` (${code})` : ""}: ${message}`,
    );
  }
  if (status === 429 || status === 408 || status === 409 || status >= 500) {
    // Restate waits exactly this long before the next attempt: the SDK sends it as the attempt's
    // retry delay, which neither the step's maxRetryInterval nor the handler's retry policy caps.
    const after = retryAfterMs(err.headers);
    const wait =
      after !== undefined ? ` (provider asked to wait ${formatDuration(after, "written")})` : "";
    return new RetryableError(
      `HTTP ${status}${status >= 500 ? ` from ${redact(baseUrl, secrets)}` : ""}${status === 429 ? " rate limited" : ""}${wait}: ${message}`,
      after !== undefined ? { retryAfter: after } : {},
    );
  }
  return new TerminalError(`LLM request refused (HTTP ${status}): ${message}`, {
    errorCode: status,
  });
}

/**
 * Provider errors sometimes echo the key (e.g. "Incorrect API key provided: sk-...") or a header
 * (a gateway quoting the request). `secrets`: the key and every expanded header value of the call;
 * the longest go first, so a secret that contains another is cut out whole.
 */
export function redact(text: string, secrets?: string | readonly string[]): string {
  const cut = (typeof secrets === "string" ? [secrets] : (secrets ?? []))
    .filter((secret) => secret.length >= 4)
    .sort((a, b) => b.length - a.length)
    .reduce((out, secret) => out.split(secret).join("[redacted]"), text);
  return cut.replace(/\bsk-[A-Za-z0-9_-]{6,}/g, "[redacted]");
}
