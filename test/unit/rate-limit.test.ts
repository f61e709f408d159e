import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import {
  estimateTokens,
  LIMIT_MEMORY_MS,
  ProviderLimiter,
  RateLimiters,
  type RateGrant,
  type RateLimits,
} from "../../services/llm/rate-limit.js";

beforeEach(() => {
  vi.useFakeTimers({ now: 1_000_000 });
});

afterEach(() => {
  vi.useRealTimers();
});

/** Starts `n` acquires at once and records when (ms after start) each one was let through. */
function startMany(
  limiter: ProviderLimiter,
  n: number,
  limits: RateLimits,
  tokens = 1,
): { times: (number | undefined)[]; grants: Promise<RateGrant>[] } {
  const start = Date.now();
  const times: (number | undefined)[] = Array.from({ length: n }, () => undefined);
  const grants = Array.from({ length: n }, (_, i) =>
    limiter.acquire(tokens, limits).then((grant) => {
      times[i] = Date.now() - start;
      return grant;
    }),
  );
  return { times, grants };
}

describe("ProviderLimiter", () => {
  it("lets everything through at once when no limit was asked for", async () => {
    const limiter = new ProviderLimiter();
    const { times, grants } = startMany(limiter, 50, {});
    await Promise.all(grants);
    expect(times.every((t) => t === 0)).toBe(true);
  });

  it("--rpm 60 sends one request a second, in arrival order", async () => {
    const limiter = new ProviderLimiter();
    const { times } = startMany(limiter, 5, { rpm: 60 });
    await vi.advanceTimersByTimeAsync(0);
    expect(times).toEqual([0, undefined, undefined, undefined, undefined]);
    await vi.advanceTimersByTimeAsync(999);
    expect(times[1]).toBeUndefined();
    await vi.advanceTimersByTimeAsync(1);
    expect(times[1]).toBe(1000);
    await vi.advanceTimersByTimeAsync(3000);
    expect(times).toEqual([0, 1000, 2000, 3000, 4000]);
  });

  it("allows a burst of one second's worth of requests, then the average rate", async () => {
    const limiter = new ProviderLimiter();
    const { times } = startMany(limiter, 15, { rpm: 600 });
    await vi.advanceTimersByTimeAsync(1000);
    expect(times.slice(0, 10)).toEqual(Array.from({ length: 10 }, () => 0));
    expect(times.slice(10)).toEqual([100, 200, 300, 400, 500]);
  });

  it("--rpm 600 never lets a minute hold more than 600 requests, and keeps close to 600 a minute", async () => {
    const limiter = new ProviderLimiter();
    // Less than 2 minutes of requests: asked for once, the limit applies for LIMIT_MEMORY_MS.
    const { times } = startMany(limiter, 1000, { rpm: 600 });
    await vi.advanceTimersByTimeAsync(110_000);
    const sent = times.filter((t): t is number => t !== undefined);
    expect(sent).toHaveLength(1000);
    // Every minute that starts at a request: the provider may count from any of them.
    let busiest = 0;
    for (let i = 0, j = 0; i < sent.length; i++) {
      while (j < sent.length && sent[j]! < sent[i]! + 60_000) j++;
      busiest = Math.max(busiest, j - i);
    }
    expect(busiest).toBeLessThanOrEqual(600);
    for (const start of [0, 30_000]) {
      const inMinute = sent.filter((t) => t >= start && t < start + 60_000).length;
      expect(inMinute).toBeGreaterThanOrEqual(0.95 * 600);
    }
  });

  it("refills while idle, but never beyond one second's worth", async () => {
    const limiter = new ProviderLimiter();
    await Promise.all(startMany(limiter, 2, { rpm: 120 }).grants);
    await vi.advanceTimersByTimeAsync(60_000);
    const { times } = startMany(limiter, 4, { rpm: 120 });
    await vi.advanceTimersByTimeAsync(2000);
    expect(times).toEqual([0, 0, 500, 1000]);
  });

  it("--tpm paces by estimated tokens and corrects by what the provider counted", async () => {
    const limiter = new ProviderLimiter();
    // 6000 tokens a minute: a bucket of 100 tokens refilled at 100 a second.
    const first = await limiter.acquire(60, { tpm: 6000 });
    first.settle(180); // it really cost 180: the bucket is now 80 in debt.
    let at: number | undefined;
    const started = Date.now();
    void limiter.acquire(50, { tpm: 6000 }).then(() => (at = Date.now() - started));
    await vi.advanceTimersByTimeAsync(1299);
    expect(at).toBeUndefined();
    await vi.advanceTimersByTimeAsync(1);
    expect(at).toBe(1300);
  });

  it("lets a request bigger than the bucket go once the bucket is full, then owes the rest", async () => {
    const limiter = new ProviderLimiter();
    const { times } = startMany(limiter, 2, { tpm: 6000 }, 250);
    await vi.advanceTimersByTimeAsync(0);
    expect(times[0]).toBe(0);
    // 150 tokens in debt plus a full bucket (100) for the next one: 2.5 s.
    await vi.advanceTimersByTimeAsync(2500);
    expect(times[1]).toBe(2500);
  });

  it("gives a settled overestimate back", async () => {
    const limiter = new ProviderLimiter();
    const grant = await limiter.acquire(100, { tpm: 6000 });
    grant.settle(10);
    const started = Date.now();
    const next = await limiter.acquire(90, { tpm: 6000 });
    expect(Date.now() - started).toBe(0);
    expect(next.waitedMs).toBe(0);
  });

  it("needs both buckets: the slower one decides", async () => {
    const limiter = new ProviderLimiter();
    const { times } = startMany(limiter, 3, { rpm: 6000, tpm: 600 }, 10);
    await vi.advanceTimersByTimeAsync(5000);
    // rpm alone would allow 100 a second; 10 tokens of a 10-token bucket refilled at 10/s: 1 a second.
    expect(times).toEqual([0, 1000, 2000]);
  });

  it("drops a waiter whose signal aborts, rejecting with the reason, and serves the next", async () => {
    const limiter = new ProviderLimiter();
    await limiter.acquire(1, { rpm: 60 });
    const controller = new AbortController();
    const aborted = limiter.acquire(1, { rpm: 60 }, controller.signal);
    let nextAt: number | undefined;
    const started = Date.now();
    void limiter.acquire(1, { rpm: 60 }).then(() => (nextAt = Date.now() - started));
    await vi.advanceTimersByTimeAsync(300);
    controller.abort(new Error("attempt ended"));
    await expect(aborted).rejects.toThrow("attempt ended");
    await vi.advanceTimersByTimeAsync(700);
    // The aborted waiter's slot went to the next one in line.
    expect(nextAt).toBe(1000);
  });

  it("refuses at once when the signal is already aborted", async () => {
    const limiter = new ProviderLimiter();
    await expect(limiter.acquire(1, {}, AbortSignal.abort(new Error("gone")))).rejects.toThrow(
      "gone",
    );
  });

  it("applies the lowest limit asked for recently to every call, limited or not", async () => {
    const limiter = new ProviderLimiter();
    await limiter.acquire(1, { rpm: 6000 });
    await limiter.acquire(1, { rpm: 60 });
    expect(limiter.effectiveLimits()).toEqual({ rpm: 60 });
    // A call that asks for nothing, or for more, still waits under the lower limit.
    const { times } = startMany(limiter, 2, {});
    await vi.advanceTimersByTimeAsync(2000);
    expect(times).toEqual([1000, 2000]);
    void limiter.acquire(1, { rpm: 600 });
    expect(limiter.effectiveLimits()).toEqual({ rpm: 60 });
  });

  it("forgets a limit nobody asked for within LIMIT_MEMORY_MS", async () => {
    const limiter = new ProviderLimiter();
    await limiter.acquire(1, { rpm: 60, tpm: 1000 });
    await vi.advanceTimersByTimeAsync(LIMIT_MEMORY_MS / 2);
    await limiter.acquire(1, { rpm: 120 });
    expect(limiter.effectiveLimits()).toEqual({ rpm: 60, tpm: 1000 });
    await vi.advanceTimersByTimeAsync(LIMIT_MEMORY_MS / 2 + 1);
    expect(limiter.effectiveLimits()).toEqual({ rpm: 120 });
    await vi.advanceTimersByTimeAsync(LIMIT_MEMORY_MS);
    expect(limiter.effectiveLimits()).toEqual({});
    const { times } = startMany(limiter, 20, {});
    await vi.advanceTimersByTimeAsync(0);
    expect(times.every((t) => t === 0)).toBe(true);
  });

  it("reports how long a caller waited", async () => {
    const limiter = new ProviderLimiter();
    const { grants } = startMany(limiter, 2, { rpm: 60 });
    await vi.advanceTimersByTimeAsync(1000);
    expect((await grants[0]!).waitedMs).toBe(0);
    expect((await grants[1]!).waitedMs).toBe(1000);
  });
});

describe("RateLimiters", () => {
  it("keeps one limiter per base URL and model", () => {
    const limiters = new RateLimiters();
    const a = limiters.for({ name: "gpt-4o-mini" });
    expect(limiters.for({ name: "gpt-4o-mini", baseUrl: "https://api.openai.com/v1" })).toBe(a);
    expect(limiters.for({ name: "gpt-4o" })).not.toBe(a);
    expect(limiters.for({ name: "gpt-4o-mini", baseUrl: "http://127.0.0.1:11434/v1" })).not.toBe(a);
  });
});

describe("estimateTokens", () => {
  it("counts about four characters a token, at least one", () => {
    expect(estimateTokens("")).toBe(1);
    expect(estimateTokens("x".repeat(398))).toBe(100);
  });
});
