/** The Job's result rules, without Restate: what status, cost and placeholder results a job ends with. */
import { CancelledError, TerminalError } from "@restatedev/restate-sdk";
import { describe, expect, it } from "vitest";
import { assembleViews } from "../../services/job/view-store.js";
import {
  askStatus,
  attemptsOf,
  badInputResult,
  batchStatus,
  budgetError,
  errorData,
  isCancel,
  jobResult,
  refusedResult,
  statusOf,
  sumCost,
  timeoutError,
} from "../../services/job/results.js";
import { ZERO_USAGE, type BadInputResult, type JobResult } from "../../services/types.js";

const usage = { input: 1000, output: 500, total: 1500 };
const req = { job: "j1", input: "a.txt", model: { name: "gpt-4o-mini" } };

function item(status: JobResult["status"]): JobResult {
  return jobResult(req, "analyze", { status, result: {}, errors: {}, usage, ms: 1 });
}

describe("job status", () => {
  it("analyze: done without failures, failed without successes, partial between", () => {
    expect(statusOf(2, 0)).toBe("done");
    expect(statusOf(0, 2)).toBe("failed");
    expect(statusOf(1, 1)).toBe("partial");
  });

  it("ask: cancelled first, then answered, then out of budget is partial", () => {
    expect(askStatus({ cancelled: true, answered: true, outOfBudget: false })).toBe("cancelled");
    expect(askStatus({ cancelled: false, answered: true, outOfBudget: true })).toBe("done");
    expect(askStatus({ cancelled: false, answered: false, outOfBudget: true })).toBe("partial");
    expect(askStatus({ cancelled: false, answered: false, outOfBudget: false })).toBe("failed");
  });

  it("batch: done only when every input finished done; failed when none did any work", () => {
    const bad = badInputResult("b.txt", { message: "empty" });
    expect(batchStatus(false, [item("done"), item("done")], 2)).toBe("done");
    expect(batchStatus(false, [item("done")], 2)).toBe("partial");
    expect(batchStatus(false, [item("partial"), bad], 2)).toBe("partial");
    expect(batchStatus(false, [item("failed"), bad], 2)).toBe("failed");
    expect(batchStatus(true, [item("done"), item("done")], 2)).toBe("cancelled");
  });
});

describe("cost", () => {
  it("is on a result only when the model has a price, and sums over a batch's items", () => {
    expect(item("done")).not.toHaveProperty("cost");
    const priced = jobResult({ ...req, price: { input: 1, output: 2 } }, "ask", {
      status: "done",
      result: null,
      errors: {},
      usage,
      ms: 5,
    });
    expect(priced.cost).toBe(0.002);
    // The cost comes last, after ms, as the JSON output has always shown it.
    expect(Object.keys(priced).slice(-2)).toEqual(["ms", "cost"]);
    const items: (JobResult | BadInputResult)[] = [
      priced,
      priced,
      item("done"),
      badInputResult("x", { message: "m" }),
    ];
    expect(sumCost(items)).toBe(0.004);
    expect(sumCost([item("done")])).toBeUndefined();
  });

  it("is never on a refused job, whatever the price", () => {
    const refused = refusedResult({ ...req, price: { input: 1, output: 1 } }, "analyze", "no", {});
    expect(refused).toMatchObject({ status: "failed", usage: ZERO_USAGE, ms: 0 });
    expect(refused.errors).toEqual({ grants: { message: "no", code: 403 } });
    expect(refused).not.toHaveProperty("cost");
  });
});

describe("results of inputs that did not run", () => {
  it("are failed with the reason as the input's error, marked notRun when never started", () => {
    expect(badInputResult("a", { message: "empty" })).toEqual({
      job: null,
      status: "failed",
      input: "a",
      result: null,
      errors: { input: { message: "empty" } },
      usage: ZERO_USAGE,
    });
    expect(badInputResult("a", { message: "not run" }, true)).toMatchObject({ notRun: true });
  });
});

describe("failures as data", () => {
  it("keeps a terminal error's message and code, and the attempts a task reported", () => {
    const failure = new TerminalError("boom", { errorCode: 503, metadata: { attempts: "3" } });
    expect(errorData(failure)).toEqual({ message: "boom", code: 503 });
    expect(attemptsOf(failure)).toEqual({ attempts: 3 });
    expect(attemptsOf(new TerminalError("x"))).toEqual({});
    expect(errorData("plain")).toEqual({ message: "plain" });
  });

  it("tells a cancellation from a failure, also as a callee's 409", () => {
    expect(isCancel(new CancelledError())).toBe(true);
    expect(isCancel(new TerminalError("cancelled", { errorCode: 409 }))).toBe(true);
    expect(isCancel(new TerminalError("boom"))).toBe(false);
  });

  it("says which limit stopped a job, in the user's units", () => {
    expect(timeoutError(90_000, "before x").message).toBe(
      "stopped: the job's --timeout of 90s passed before x",
    );
    expect(timeoutError(120_000, "before x").message).toContain("of 2m");
    expect(timeoutError(undefined, "before x").message).toBe(
      "stopped: the job's --timeout passed before x",
    );
    expect(budgetError(120, 100, "before turn 3").message).toBe(
      "token budget exhausted (120 of --max-tokens-total 100 tokens used) before turn 3",
    );
  });
});

describe("the view store's read side", () => {
  it("puts a running job's per-task and per-input records into its view", () => {
    const view = {
      v: 1,
      job: "b1",
      kind: "batch",
      status: "running",
      tasks: [{ id: "t1", name: "t1", kind: "analysis", state: "running" }],
      children: [{ input: "a", state: "queued" }],
    };
    const rows = [
      {
        service_key: "b1",
        key: "task:t1",
        value_utf8: JSON.stringify({ ...view.tasks[0], state: "done" }),
      },
      { service_key: "b1", key: "view", value_utf8: JSON.stringify(view) },
      {
        service_key: "b1",
        key: "child:0",
        value_utf8: JSON.stringify({ input: "a", state: "running" }),
      },
      { service_key: "other", key: "task:t1", value_utf8: "{}" },
    ];
    const views = assembleViews(rows);
    expect([...views.keys()]).toEqual(["b1"]);
    expect(views.get("b1")!.tasks[0]!.state).toBe("done");
    expect(views.get("b1")!.children![0]!.state).toBe("running");
  });
});
