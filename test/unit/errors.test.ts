import { describe, expect, it } from "vitest";
import {
  describeError,
  EXIT,
  EXIT_CODE_HELP,
  InterruptedError,
  PagentError,
  UnavailableError,
  UsageError,
} from "../../src/errors.js";

describe("describeError", () => {
  it.each([
    [new UsageError("missing file x.txt"), 2],
    [new UnavailableError("cannot reach Restate"), 69],
    [new InterruptedError("stopped watching; pagent attach an-1"), 130],
    [new PagentError("some tasks failed", EXIT.partial), 3],
    [new PagentError("job failed", EXIT.jobFailed), 1],
  ])("%s keeps its message and exit code %d", (error, exitCode) => {
    expect(describeError(error)).toEqual({ message: error.message, exitCode });
  });

  it("error classes are Errors with their own names", () => {
    const error = new UsageError("bad", { cause: new Error("root") });
    expect(error).toBeInstanceOf(Error);
    expect(error).toBeInstanceOf(PagentError);
    expect(error.name).toBe("UsageError");
    expect((error.cause as Error).message).toBe("root");
    expect(new UnavailableError("x").name).toBe("UnavailableError");
    expect(new InterruptedError("x").name).toBe("InterruptedError");
  });

  it.each(["ECONNREFUSED", "ECONNRESET", "UND_ERR_CONNECT_TIMEOUT"])(
    "a %s error means Restate is unavailable: exit 69 with a hint",
    (code) => {
      const error = Object.assign(new Error(`connect ${code} 127.0.0.1:8080`), { code });
      const described = describeError(error);
      expect(described.exitCode).toBe(69);
      expect(described.message).toContain(code);
      expect(described.message).toContain("pagent server start");
      expect(described.message).toContain("--restate-url");
    },
  );

  // Bug (latent): src/errors.ts:60 only looks at `error.code`. Node's fetch reports a refused
  // connection as TypeError("fetch failed") with the code on `error.cause.code`; any such error
  // not wrapped by a caller is shown as "unexpected error: fetch failed" with exit 1, not 69.
  it("a fetch failure caused by ECONNREFUSED is exit 69 too", () => {
    const error = new TypeError("fetch failed", {
      cause: Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:8080"), {
        code: "ECONNREFUSED",
      }),
    });
    expect(describeError(error).exitCode).toBe(69);
  });

  it("anything else is exit 1, with its message and a --verbose hint", () => {
    const described = describeError(new RangeError("index out of range"));
    expect(described.exitCode).toBe(1);
    expect(described.message).toContain("index out of range");
    expect(described.message).toContain("--verbose");
  });

  it("handles thrown non-Errors", () => {
    expect(describeError("a string")).toMatchObject({ exitCode: 1 });
    expect(describeError("a string").message).toContain("a string");
    expect(describeError(undefined).exitCode).toBe(1);
    expect(describeError(null).exitCode).toBe(1);
    expect(describeError({ code: 42 }).exitCode).toBe(1);
  });
});

describe("exit codes", () => {
  it("the table matches SPEC.md", () => {
    expect(EXIT).toEqual({
      ok: 0,
      jobFailed: 1,
      usage: 2,
      partial: 3,
      unavailable: 69,
      interrupted: 130,
    });
  });

  it("--help lists every code, in order, one per line", () => {
    const codes = [...EXIT_CODE_HELP.matchAll(/^\s+(\d+)\s+\S/gm)].map((m) => Number(m[1]));
    expect(codes).toEqual([0, 1, 2, 3, 69, 130]);
    expect(EXIT_CODE_HELP).toContain("pagent attach JOB");
  });
});
