import { describe, expect, it } from "vitest";
import type { TaskView } from "../../services/types.js";
import {
  failureLine,
  snapshotTask,
  taskEvents,
  type InvocationRow,
  type TaskSnapshot,
} from "../../src/jobs/progress.js";

const view = { job: "an-1", maxAttempts: 5 };
const usage = { input: 10, output: 20, total: 30 };
const STACK_FAILURE =
  "[500 Internal] HTTP 503: upstream overloaded\n    at callChat (chat.ts:1:1)\n    at run (tasks.ts:2:2)";

function task(overrides: Partial<TaskView> = {}): TaskView {
  return {
    id: "t1",
    name: "sentiment",
    kind: "analysis",
    invocationId: "inv_1",
    state: "running",
    ...overrides,
  };
}

function invocation(overrides: Partial<InvocationRow> = {}): InvocationRow {
  return { id: "inv_1", status: "running", retry_count: 1, ...overrides };
}

function snap(overrides: Partial<TaskSnapshot> = {}): TaskSnapshot {
  return {
    job: "an-1",
    task: "t1",
    name: "sentiment",
    kind: "analysis",
    state: "queued",
    attempt: 1,
    maxAttempts: 5,
    ...overrides,
  };
}

const types = (events: { type: string }[]) => events.map((e) => e.type);

describe("failureLine", () => {
  it("keeps the first line, without Restate's [code Kind] prefix", () => {
    expect(failureLine(STACK_FAILURE)).toBe("HTTP 503: upstream overloaded");
    expect(failureLine("[500] boom")).toBe("boom");
    expect(failureLine("plain message")).toBe("plain message");
  });

  it("is undefined for no failure", () => {
    expect(failureLine(undefined)).toBeUndefined();
    expect(failureLine("")).toBeUndefined();
  });

  it("truncates a long line to 300 characters ending in ...", () => {
    const line = failureLine(`[500 Internal] ${"x".repeat(1000)}`)!;
    expect(line).toHaveLength(300);
    expect(line.endsWith("...")).toBe(true);
    expect(failureLine("y".repeat(300))).toBe("y".repeat(300));
  });
});

describe("snapshotTask", () => {
  it("carries the job, task identity, args and max attempts", () => {
    const s = snapshotTask(
      view,
      task({ kind: "tool", name: "calculator", args: { expression: "1+1" } }),
      invocation(),
    );
    expect(s).toMatchObject({
      job: "an-1",
      task: "t1",
      name: "calculator",
      kind: "tool",
      args: { expression: "1+1" },
      maxAttempts: 5,
      attempt: 1,
    });
  });

  it("a finished task takes its state, time, output and usage from the job's view", () => {
    const s = snapshotTask(
      view,
      task({ state: "done", ms: 1234, output: { label: "positive" }, usage }),
      undefined,
    );
    expect(s).toMatchObject({ state: "done", ms: 1234, output: { label: "positive" }, usage });
  });

  it("a failed task carries its error message", () => {
    const s = snapshotTask(
      view,
      task({ state: "failed", error: { message: "invalid answer", code: 500 } }),
      undefined,
    );
    expect(s).toMatchObject({ state: "failed", error: "invalid answer" });
  });

  it("a cancelled task stays cancelled", () => {
    expect(snapshotTask(view, task({ state: "cancelled" }), undefined).state).toBe("cancelled");
  });

  it("a queued task, or a running one with no invocation yet, is queued", () => {
    expect(snapshotTask(view, task({ state: "queued" }), undefined).state).toBe("queued");
    expect(snapshotTask(view, task(), undefined).state).toBe("queued");
  });

  it.each(["pending", "scheduled", "ready", "inboxed"])(
    "invocation status %s is queued",
    (status) => {
      expect(snapshotTask(view, task(), invocation({ status })).state).toBe("queued");
    },
  );

  it.each(["running", "suspended"])("invocation status %s is running", (status) => {
    const s = snapshotTask(view, task(), invocation({ status }));
    expect(s.state).toBe("running");
    expect(s.error).toBeUndefined();
  });

  it("backing-off is retrying with the first line of the last failure", () => {
    const s = snapshotTask(
      view,
      task(),
      invocation({ status: "backing-off", retry_count: 2, last_failure: STACK_FAILURE }),
    );
    expect(s).toMatchObject({
      state: "retrying",
      attempt: 2,
      maxAttempts: 5,
      error: "HTTP 503: upstream overloaded",
    });
  });

  it("paused is retrying, named as paused when there is no failure text", () => {
    const s = snapshotTask(view, task(), invocation({ status: "paused", retry_count: 5 }));
    expect(s).toMatchObject({ state: "retrying", attempt: 5, error: "paused" });
  });

  it("running again after a failure (retry_count > 1) is running that attempt, not retrying", () => {
    const s = snapshotTask(
      view,
      task(),
      invocation({ status: "running", retry_count: 3, last_failure: "[500 Internal] timeout" }),
    );
    expect(s).toMatchObject({ state: "running", attempt: 3 });
  });

  it("the attempt never exceeds the attempts a step gets", () => {
    const s = snapshotTask(
      { ...view, maxAttempts: 5 },
      task(),
      invocation({ status: "backing-off", retry_count: 12, last_failure: "[500 Internal] gone" }),
    );
    expect(s).toMatchObject({ state: "retrying", attempt: 5, maxAttempts: 5 });
  });

  it("a first attempt that carries no failure is running, attempt 1", () => {
    const s = snapshotTask(view, task(), invocation({ retry_count: 0 }));
    expect(s).toMatchObject({ state: "running", attempt: 1 });
  });
});

describe("taskEvents", () => {
  it("first sight of a queued task emits task.queued with kind and args", () => {
    const events = taskEvents(
      undefined,
      snap({ kind: "tool", name: "calculator", args: { expression: "2*3" } }),
    );
    expect(events).toEqual([
      {
        type: "task.queued",
        task: "t1",
        name: "calculator",
        kind: "tool",
        args: { expression: "2*3" },
      },
    ]);
  });

  it("first sight of a running task emits task.queued then task.started", () => {
    expect(types(taskEvents(undefined, snap({ state: "running" })))).toEqual([
      "task.queued",
      "task.started",
    ]);
  });

  it("nothing changed: no event", () => {
    expect(taskEvents(snap(), snap())).toEqual([]);
    expect(taskEvents(snap({ state: "running" }), snap({ state: "running" }))).toEqual([]);
    const retrying = snap({ state: "retrying", attempt: 2, error: "boom" });
    expect(taskEvents(retrying, { ...retrying })).toEqual([]);
    const done = snap({ state: "done", ms: 5, output: {} });
    expect(taskEvents(done, { ...done })).toEqual([]);
  });

  it("queued → running emits task.started with the attempt", () => {
    expect(taskEvents(snap(), snap({ state: "running" }))).toEqual([
      { type: "task.started", task: "t1", name: "sentiment", attempt: 1 },
    ]);
  });

  it("running → retrying emits task.retrying with attempt, maxAttempts and the error", () => {
    expect(
      taskEvents(
        snap({ state: "running" }),
        snap({ state: "retrying", attempt: 2, error: "HTTP 503" }),
      ),
    ).toEqual([
      {
        type: "task.retrying",
        task: "t1",
        name: "sentiment",
        attempt: 2,
        maxAttempts: 5,
        error: "HTTP 503",
      },
    ]);
  });

  it("a new attempt while retrying emits another task.retrying", () => {
    const events = taskEvents(
      snap({ state: "retrying", attempt: 2, error: "HTTP 503" }),
      snap({ state: "retrying", attempt: 3, error: "HTTP 502" }),
    );
    expect(events).toEqual([
      expect.objectContaining({ type: "task.retrying", attempt: 3, error: "HTTP 502" }),
    ]);
  });

  it("queued → retrying shows that the task started before it retried", () => {
    expect(types(taskEvents(snap(), snap({ state: "retrying", attempt: 2, error: "x" })))).toEqual([
      "task.started",
      "task.retrying",
    ]);
  });

  it("retrying → done emits task.done with ms, output and usage", () => {
    const events = taskEvents(
      snap({ state: "retrying", attempt: 2, error: "x" }),
      snap({ state: "done", ms: 1500, output: { summary: "s" }, usage }),
    );
    expect(events).toEqual([
      {
        type: "task.done",
        task: "t1",
        name: "sentiment",
        ms: 1500,
        output: { summary: "s" },
        usage,
      },
    ]);
  });

  it("queued → done (finished between two polls) emits task.started then task.done", () => {
    expect(types(taskEvents(snap(), snap({ state: "done", ms: 3, output: 1 })))).toEqual([
      "task.started",
      "task.done",
    ]);
  });

  it("first sight of a finished task emits queued, started and done", () => {
    expect(types(taskEvents(undefined, snap({ state: "done", output: 1 })))).toEqual([
      "task.queued",
      "task.started",
      "task.done",
    ]);
  });

  it("running → failed emits task.failed with the error", () => {
    expect(
      taskEvents(snap({ state: "running" }), snap({ state: "failed", error: "HTTP 401" })),
    ).toEqual([{ type: "task.failed", task: "t1", name: "sentiment", error: "HTTP 401" }]);
  });

  it("a cancelled task is reported as failed: cancelled", () => {
    expect(taskEvents(snap({ state: "running" }), snap({ state: "cancelled" }))).toEqual([
      { type: "task.failed", task: "t1", name: "sentiment", error: "cancelled" },
    ]);
  });

  it("a whole life through snapshotTask emits each event once, in order", () => {
    const rows: [TaskView, InvocationRow | undefined][] = [
      [task({ state: "queued" }), undefined],
      [task(), invocation({ status: "running", retry_count: 1 })],
      [task(), invocation({ status: "running", retry_count: 1 })],
      [task(), invocation({ status: "backing-off", retry_count: 1, last_failure: STACK_FAILURE })],
      [task(), invocation({ status: "running", retry_count: 2, last_failure: STACK_FAILURE })],
      [task(), invocation({ status: "backing-off", retry_count: 2, last_failure: STACK_FAILURE })],
      [task(), invocation({ status: "running", retry_count: 3, last_failure: STACK_FAILURE })],
      [task({ state: "done", ms: 900, output: { ok: true }, usage }), undefined],
      [task({ state: "done", ms: 900, output: { ok: true }, usage }), undefined],
    ];
    let previous: TaskSnapshot | undefined;
    const events = [];
    for (const [t, inv] of rows) {
      const next = snapshotTask(view, t, inv);
      events.push(...taskEvents(previous, next));
      previous = next;
    }
    expect(
      events.map((e) =>
        e.type === "task.retrying" || e.type === "task.started" ? `${e.type}#${e.attempt}` : e.type,
      ),
    ).toEqual([
      // Two failed attempts: one task.retrying each, numbered as the attempt that failed.
      "task.queued",
      "task.started#1",
      "task.retrying#1",
      "task.started#2",
      "task.retrying#2",
      "task.started#3",
      "task.done",
    ]);
  });
});
