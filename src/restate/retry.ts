import { UnavailableError } from "../errors.js";

/** How long a retry loop may go on: a time budget, or a number of tries (the first one counts). */
export type RetryBudget = { timeoutMs: number } | { attempts: number };

export interface RetryOptions {
  /** Before each new try: recover what failed (restart the embedded server, move to another node). */
  beforeRetry?: () => Promise<void>;
  /** Pause between tries. */
  pauseMs?: number;
}

/**
 * Runs `op` until it succeeds, fails with something other than {@link UnavailableError} (which is
 * thrown at once), or the budget is spent (then the last error is thrown). The one loop for Restate
 * being unreachable for a moment: a restarting server, a partition leader moving between nodes.
 */
export async function retryWhileUnavailable<T>(
  op: () => Promise<T>,
  budget: RetryBudget,
  options: RetryOptions = {},
): Promise<T> {
  const deadline = "timeoutMs" in budget ? Date.now() + budget.timeoutMs : Infinity;
  const attempts = "attempts" in budget ? budget.attempts : Infinity;
  for (let attempt = 1; ; attempt++) {
    try {
      return await op();
    } catch (error) {
      if (!(error instanceof UnavailableError) || attempt >= attempts || Date.now() > deadline) {
        throw error;
      }
      await options.beforeRetry?.();
      if (options.pauseMs) await new Promise((r) => setTimeout(r, options.pauseMs));
    }
  }
}

/**
 * An admin call while a server starts or a cluster moves a partition's leader: tried again for up to
 * 20 s, 200 ms apart.
 */
export function retryAdmin<T>(op: () => Promise<T>): Promise<T> {
  return retryWhileUnavailable(op, { timeoutMs: 20_000 }, { pauseMs: 200 });
}
