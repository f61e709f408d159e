import { RetryableError, TerminalError } from "@restatedev/restate-sdk";
import { describe, expect, it } from "vitest";
import { classifyLlmError, redact, retryAfterMs } from "../../services/llm/chat.js";

function httpError(status: number, message: string, headers?: unknown): Error {
  return Object.assign(new Error(message), { status, headers });
}

function retryable(error: unknown): RetryableError {
  expect(error).toBeInstanceOf(RetryableError);
  expect(error).not.toBeInstanceOf(TerminalError);
  return error as RetryableError;
}

function terminal(error: unknown): TerminalError {
  expect(error).toBeInstanceOf(TerminalError);
  return error as TerminalError;
}

describe("retryAfterMs", () => {
  const now = Date.parse("2025-01-01T12:00:00Z");

  it("Retry-After in seconds, from a Headers object (any case) or a plain record", () => {
    expect(retryAfterMs(new Headers({ "Retry-After": "3" }))).toBe(3000);
    expect(retryAfterMs({ "retry-after": "0.5" })).toBe(500);
    expect(retryAfterMs({ "retry-after": "0" })).toBe(0);
  });

  it("Retry-After as an HTTP date, relative to now and never negative", () => {
    const in5s = new Date(now + 5000).toUTCString();
    expect(retryAfterMs({ "retry-after": in5s }, now)).toBe(5000);
    expect(retryAfterMs(new Headers({ "retry-after": in5s }), now)).toBe(5000);
    const past = new Date(now - 60_000).toUTCString();
    expect(retryAfterMs({ "retry-after": past }, now)).toBe(0);
  });

  it("retry-after-ms wins over retry-after", () => {
    expect(retryAfterMs({ "retry-after-ms": "150", "retry-after": "9" })).toBe(150);
    expect(retryAfterMs(new Headers({ "retry-after-ms": "250" }))).toBe(250);
  });

  it.each([
    ["1.5s", 1500],
    ["20ms", 20],
    ["1m", 60_000],
    ["2", 2000],
  ])("x-ratelimit-reset-requests %j is %d ms", (value, ms) => {
    expect(retryAfterMs({ "x-ratelimit-reset-requests": value })).toBe(ms);
    expect(retryAfterMs(new Headers({ "x-ratelimit-reset-requests": value }))).toBe(ms);
  });

  it("falls back to x-ratelimit-reset-tokens", () => {
    expect(retryAfterMs({ "x-ratelimit-reset-tokens": "750ms" })).toBe(750);
  });

  // Bug: services/llm/chat.ts:178 only matches a single number+unit. OpenAI sends compound
  // durations such as "6m0s" or "1m30s" in x-ratelimit-reset-*; they give undefined, so a
  // rate-limited call is retried on the default short backoff and burns its attempts.
  it('understands OpenAI\'s compound reset durations like "6m0s"', () => {
    expect(retryAfterMs({ "x-ratelimit-reset-tokens": "6m0s" })).toBe(360_000);
  });

  it("no usable header is undefined", () => {
    expect(retryAfterMs(undefined)).toBeUndefined();
    expect(retryAfterMs({})).toBeUndefined();
    expect(retryAfterMs(new Headers())).toBeUndefined();
    expect(retryAfterMs({ "retry-after": "soon" })).toBeUndefined();
    expect(retryAfterMs({ "x-ratelimit-reset-requests": "later" })).toBeUndefined();
    expect(retryAfterMs({ "retry-after": 3 })).toBeUndefined();
  });
});

describe("classifyLlmError", () => {
  it("429 is retryable after the provider's Retry-After", () => {
    const error = retryable(
      classifyLlmError(
        httpError(429, "Rate limit reached", new Headers({ "retry-after": "2" })),
        30_000,
      ),
    );
    expect(error.retryAfter).toBe(2000);
    expect(error.message).toMatch(/^HTTP 429 rate limited\b/);
    expect(error.message).toContain("Rate limit reached");
  });

  it("429 without headers is retryable on the default backoff", () => {
    const error = retryable(classifyLlmError(httpError(429, "slow down"), 30_000));
    expect(error.retryAfter).toBeUndefined();
  });

  it.each([500, 502, 503, 504, 408, 409])("HTTP %d is retryable", (status) => {
    const error = retryable(classifyLlmError(httpError(status, "server trouble"), 30_000));
    expect(error.message).toContain(`HTTP ${status}`);
    expect(error.message).toContain("server trouble");
  });

  it("a 503 with reset headers waits for them", () => {
    const error = retryable(
      classifyLlmError(
        httpError(503, "overloaded", { "x-ratelimit-reset-requests": "1.5s" }),
        30_000,
      ),
    );
    expect(error.retryAfter).toBe(1500);
  });

  it.each([400, 401, 403, 404, 422])(
    "HTTP %d is terminal with the status as its code",
    (status) => {
      const error = terminal(classifyLlmError(httpError(status, "refused"), 30_000));
      expect(error.code).toBe(status);
      expect(error.message).toContain(`HTTP ${status}`);
      expect(error.message).toContain("refused");
    },
  );

  it("a network error without a status is retryable: LLM unreachable", () => {
    const error = retryable(
      classifyLlmError(
        Object.assign(new Error("Connection error."), { code: "ECONNREFUSED" }),
        30_000,
      ),
    );
    expect(error.message).toBe(
      "provider unreachable at https://api.openai.com/v1 (ECONNREFUSED): Connection error.",
    );
  });

  it("a timeout is retryable and says how long it waited", () => {
    const timeout = Object.assign(new Error("Request timed out."), { name: "TimeoutError" });
    expect(retryable(classifyLlmError(timeout, 45_000)).message).toBe(
      "LLM call timed out after 45000 ms",
    );
    expect(retryable(classifyLlmError(new Error("Request was aborted."), 1000)).message).toMatch(
      /timed out after 1000 ms/,
    );
  });

  it("an attempt aborted by Restate is retryable, whatever the error", () => {
    const controller = new AbortController();
    controller.abort();
    retryable(classifyLlmError(httpError(400, "bad"), 30_000, controller.signal));
  });

  it("never repeats the API key in the error", () => {
    const key = "sk-proj-abcDEF1234567890";
    const error = terminal(
      classifyLlmError(
        httpError(401, `Incorrect API key provided: ${key}`),
        30_000,
        undefined,
        key,
      ),
    );
    expect(error.message).not.toContain(key);
    expect(error.message).toContain("[redacted]");
    const network = retryable(
      classifyLlmError(new Error(`fetch failed for ${key}`), 1, undefined, key),
    );
    expect(network.message).not.toContain(key);
  });
});

describe("redact", () => {
  it("removes the given key, whatever its shape", () => {
    const key = "gsk_Live.Key+With$pecial";
    expect(redact(`bad key ${key} (twice: ${key})`, key)).toBe(
      "bad key [redacted] (twice: [redacted])",
    );
  });

  it("removes sk-... keys even when no key is given", () => {
    expect(redact("Incorrect API key provided: sk-abc123XYZ_-789.")).toBe(
      "Incorrect API key provided: [redacted].",
    );
    expect(redact("key sk-proj-AbCdEf0123456789 here")).toBe("key [redacted] here");
  });

  it("leaves ordinary text alone", () => {
    expect(redact("risk-assessment and task-123456 are fine", "x")).toBe(
      "risk-assessment and task-123456 are fine",
    );
    expect(redact("no secrets here")).toBe("no secrets here");
  });
});
