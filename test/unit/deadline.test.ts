import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { deadline } from "../../services/deadline.js";

beforeEach(() => {
  vi.useFakeTimers();
});

afterEach(() => {
  vi.useRealTimers();
});

describe("deadline", () => {
  it("aborts with a TimeoutError once its time is up", () => {
    const limit = deadline(new AbortController().signal, 2000);
    vi.advanceTimersByTime(1999);
    expect(limit.signal.aborted).toBe(false);
    vi.advanceTimersByTime(1);
    expect(limit.signal.aborted).toBe(true);
    expect((limit.signal.reason as DOMException).name).toBe("TimeoutError");
    expect((limit.signal.reason as DOMException).message).toBe("timed out after 2000 ms");
  });

  it("aborts with its parent, with the parent's reason", () => {
    const parent = new AbortController();
    const limit = deadline(parent.signal, 2000);
    parent.abort(new Error("attempt over"));
    expect(limit.signal.aborted).toBe(true);
    expect((limit.signal.reason as Error).message).toBe("attempt over");
  });

  it("starts aborted when the parent already is", () => {
    const limit = deadline(AbortSignal.abort(new Error("gone")), 2000);
    expect(limit.signal.aborted).toBe(true);
  });

  it("does nothing more once cleared", () => {
    const parent = new AbortController();
    const limit = deadline(parent.signal, 2000);
    limit.clear();
    vi.advanceTimersByTime(5000);
    parent.abort();
    expect(limit.signal.aborted).toBe(false);
    expect(vi.getTimerCount()).toBe(0);
  });
});
