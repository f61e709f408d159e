import { describe, expect, it } from "vitest";
import { UnavailableError, UsageError } from "../../src/errors.js";
import { retryWhileUnavailable } from "../../src/restate/retry.js";

/** An operation that is unavailable `failures` times, then answers. */
function flaky(failures: number) {
  let calls = 0;
  return {
    op: () =>
      Promise.resolve().then(() => {
        calls++;
        if (calls <= failures) throw new UnavailableError(`down (${calls})`);
        return "up";
      }),
    calls: () => calls,
  };
}

describe("retryWhileUnavailable", () => {
  it("tries again while Restate is unavailable, recovering before each new try", async () => {
    const { op, calls } = flaky(2);
    let recovered = 0;
    const result = await retryWhileUnavailable(
      op,
      { attempts: 3 },
      { beforeRetry: () => Promise.resolve(void recovered++) },
    );
    expect(result).toBe("up");
    expect(calls()).toBe(3);
    expect(recovered).toBe(2);
  });

  it("throws the last error once the tries are spent", async () => {
    const { op, calls } = flaky(5);
    await expect(retryWhileUnavailable(op, { attempts: 3 })).rejects.toThrow("down (3)");
    expect(calls()).toBe(3);
  });

  it("throws once the time budget is spent", async () => {
    const { op } = flaky(Infinity);
    const started = Date.now();
    await expect(
      retryWhileUnavailable(op, { timeoutMs: 200 }, { pauseMs: 50 }),
    ).rejects.toBeInstanceOf(UnavailableError);
    expect(Date.now() - started).toBeGreaterThanOrEqual(200);
    expect(Date.now() - started).toBeLessThan(2000);
  });

  it("never retries any other error, and a failed recovery ends the loop", async () => {
    let calls = 0;
    const usage = () => Promise.reject(new UsageError(`bad (${++calls})`));
    await expect(retryWhileUnavailable(usage, { attempts: 3 })).rejects.toThrow("bad (1)");
    const { op } = flaky(1);
    const recover = () => Promise.reject(new UnavailableError("disk full"));
    await expect(
      retryWhileUnavailable(op, { attempts: 3 }, { beforeRetry: recover }),
    ).rejects.toThrow("disk full");
  });
});
