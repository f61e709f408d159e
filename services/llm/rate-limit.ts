/**
 * One shared request/token rate limit per provider, for every LLM call this endpoint process makes.
 *
 * No library: `bottleneck` is unmaintained, and `p-throttle`/`limiter` have fixed limits and no
 * weighted, after-the-fact token accounting. What is needed is small: two token buckets (requests
 * and tokens per minute) in front of one FIFO queue of callers that can give up (abort signal).
 *
 * Each bucket holds one second's worth of its limit (at least one request), so a cold start may
 * send that burst at once and after it the average rate never exceeds the limit. On its own that
 * bucket lets a minute hold the limit plus the burst (610 requests for `--rpm 600`), so requests
 * are also counted over a sliding window: no {@link RPM_WINDOW_MS} ever holds more than the limit,
 * whichever minute the provider counts. A request that
 * costs more tokens than the bucket holds waits for a full bucket and then leaves it in debt;
 * when the call ends, its estimate is corrected by the tokens the provider really counted.
 *
 * Which limit applies: every call carries the limits its job asked for (`--rpm`, `--tpm`). A
 * provider's limit is the lowest one any call to it asked for in the last {@link LIMIT_MEMORY_MS};
 * it applies to every call to that provider, including calls of jobs that asked for none. A job
 * can lower the shared limit, never raise it while a lower one is still being asked for.
 */
import type { ModelSpec } from "../types.js";
import { baseUrlOf } from "./providers.js";

/** Requests and tokens per minute; absent means unlimited. */
export interface RateLimits {
  rpm?: number;
  tpm?: number;
}

/** How long a limit asked for by a call keeps applying after the last call that asked for it. */
export const LIMIT_MEMORY_MS = 2 * 60_000;

/**
 * The window `--rpm` counts requests over: a minute, plus a margin because the provider counts a
 * request when it arrives, which trails the moment it was let go by a delay that varies (a new
 * connection, a busy event loop). In steady state it costs the margin's share of the rate (1.6%).
 */
export const RPM_WINDOW_MS = 61_000;

/** What a caller gets once it may call the provider. */
export interface RateGrant {
  /** How long the caller waited in the queue. */
  waitedMs: number;
  /** Corrects the token bucket once the provider reported what the call really cost. */
  settle(actualTokens: number | undefined): void;
}

/** A token bucket that refills continuously; `tokens` may go negative (debt). */
class Bucket {
  private tokens: number;
  private updatedAt: number;

  constructor(
    private perMinute: number,
    private capacity: number,
    now: number,
  ) {
    this.tokens = capacity;
    this.updatedAt = now;
  }

  private refill(now: number): void {
    const perMs = this.perMinute / 60_000;
    this.tokens = Math.min(this.capacity, this.tokens + (now - this.updatedAt) * perMs);
    this.updatedAt = now;
  }

  /** Milliseconds until `cost` can be taken (a cost above capacity needs a full bucket). */
  waitFor(cost: number, now: number): number {
    this.refill(now);
    const need = Math.min(cost, this.capacity);
    return this.tokens >= need ? 0 : (need - this.tokens) / (this.perMinute / 60_000);
  }

  take(cost: number): void {
    this.tokens -= cost;
  }

  reconfigure(perMinute: number, capacity: number, now: number): void {
    this.refill(now);
    this.perMinute = perMinute;
    this.capacity = capacity;
    this.tokens = Math.min(this.tokens, capacity);
  }
}

/** Bucket size: one second's worth of the limit, and at least one request. */
function capacityOf(perMinute: number): number {
  return Math.max(1, perMinute / 60);
}

interface Waiter {
  tokens: number;
  resolve: (grant: RateGrant) => void;
  reject: (reason: unknown) => void;
  enqueuedAt: number;
  signal?: AbortSignal;
  onAbort?: () => void;
}

function abortError(signal: AbortSignal): Error {
  return signal.reason instanceof Error
    ? signal.reason
    : new Error(`aborted while waiting for the rate limit: ${String(signal.reason)}`);
}

/** The limiter of one provider: a FIFO queue in front of a request bucket and a token bucket. */
export class ProviderLimiter {
  private readonly queue: Waiter[] = [];
  private timer: ReturnType<typeof setTimeout> | undefined;
  private readonly asked = { rpm: new Map<number, number>(), tpm: new Map<number, number>() };
  private buckets: { rpm?: Bucket; tpm?: Bucket } = {};
  /** When each request of the last {@link RPM_WINDOW_MS} was let go, oldest first, from `sentFrom`. */
  private sent: number[] = [];
  private sentFrom = 0;

  /** The limits in force now (for tests and diagnostics). */
  effectiveLimits(now = Date.now()): RateLimits {
    const lowest = (asks: Map<number, number>) => {
      let min: number | undefined;
      for (const [limit, at] of asks) {
        if (now - at > LIMIT_MEMORY_MS) asks.delete(limit);
        else if (min === undefined || limit < min) min = limit;
      }
      return min;
    };
    const rpm = lowest(this.asked.rpm);
    const tpm = lowest(this.asked.tpm);
    return { ...(rpm !== undefined ? { rpm } : {}), ...(tpm !== undefined ? { tpm } : {}) };
  }

  private applyLimits(now: number): RateLimits {
    const limits = this.effectiveLimits(now);
    for (const kind of ["rpm", "tpm"] as const) {
      const limit = limits[kind];
      const bucket = this.buckets[kind];
      if (limit === undefined) delete this.buckets[kind];
      else if (bucket) bucket.reconfigure(limit, capacityOf(limit), now);
      else this.buckets[kind] = new Bucket(limit, capacityOf(limit), now);
    }
    return limits;
  }

  /** Milliseconds until the window holds fewer than `limit` requests. */
  private windowWait(limit: number, now: number): number {
    while (this.sentFrom < this.sent.length && this.sent[this.sentFrom]! <= now - RPM_WINDOW_MS)
      this.sentFrom++;
    if (this.sentFrom > 1024 && this.sentFrom * 2 > this.sent.length) {
      this.sent = this.sent.slice(this.sentFrom);
      this.sentFrom = 0;
    }
    const inWindow = this.sent.length - this.sentFrom;
    return inWindow < limit ? 0 : this.sent[this.sent.length - limit]! + RPM_WINDOW_MS - now;
  }

  /**
   * Waits until this call may go to the provider. `tokens` is the caller's estimate of the call's
   * cost. Rejects with the signal's reason if the signal aborts while waiting.
   */
  acquire(tokens: number, limits: RateLimits, signal?: AbortSignal): Promise<RateGrant> {
    const now = Date.now();
    if (limits.rpm !== undefined) this.asked.rpm.set(limits.rpm, now);
    if (limits.tpm !== undefined) this.asked.tpm.set(limits.tpm, now);
    return new Promise<RateGrant>((resolve, reject) => {
      if (signal?.aborted) {
        reject(abortError(signal));
        return;
      }
      const waiter: Waiter = { tokens, resolve, reject, enqueuedAt: now, signal };
      if (signal) {
        waiter.onAbort = () => {
          const index = this.queue.indexOf(waiter);
          if (index < 0) return;
          this.queue.splice(index, 1);
          reject(abortError(signal));
          if (index === 0) this.pump();
        };
        signal.addEventListener("abort", waiter.onAbort, { once: true });
      }
      this.queue.push(waiter);
      if (this.queue.length === 1) this.pump();
    });
  }

  /** Lets waiters go, in order, as long as the buckets and the window allow; otherwise sleeps until they will. */
  private pump(): void {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    const now = Date.now();
    const { rpm } = this.applyLimits(now);
    if (rpm === undefined) {
      this.sent = [];
      this.sentFrom = 0;
    }
    while (this.queue.length > 0) {
      const head = this.queue[0]!;
      const wait = Math.max(
        this.buckets.rpm?.waitFor(1, now) ?? 0,
        this.buckets.tpm?.waitFor(head.tokens, now) ?? 0,
        rpm === undefined ? 0 : this.windowWait(rpm, now),
      );
      if (wait > 0) {
        this.timer = setTimeout(() => this.pump(), Math.ceil(wait));
        return;
      }
      this.queue.shift();
      if (head.signal && head.onAbort) head.signal.removeEventListener("abort", head.onAbort);
      const tpm = this.buckets.tpm;
      this.buckets.rpm?.take(1);
      tpm?.take(head.tokens);
      if (rpm !== undefined) this.sent.push(now);
      let settled = false;
      head.resolve({
        waitedMs: now - head.enqueuedAt,
        settle: (actual) => {
          if (settled || actual === undefined || !tpm) return;
          settled = true;
          // Only the bucket the estimate was taken from is corrected (limits may have changed since).
          if (this.buckets.tpm === tpm) tpm.take(actual - head.tokens);
        },
      });
    }
  }
}

/** The limiters of one endpoint process, one per provider (base URL and model). */
export class RateLimiters {
  private readonly byProvider = new Map<string, ProviderLimiter>();

  /** OpenAI counts limits per model, and a base URL (a profile's too) is a provider (or a local server). */
  static keyOf(model: ModelSpec): string {
    return `${baseUrlOf(model)} ${model.name}`;
  }

  for(model: ModelSpec): ProviderLimiter {
    const key = RateLimiters.keyOf(model);
    let limiter = this.byProvider.get(key);
    if (!limiter) {
      limiter = new ProviderLimiter();
      this.byProvider.set(key, limiter);
    }
    return limiter;
  }
}

/** A rough token count of what is sent (about four characters a token), for the token bucket. */
export function estimateTokens(payload: unknown): number {
  return Math.max(1, Math.ceil(JSON.stringify(payload ?? "").length / 4));
}
