import { describe, expect, it } from "vitest";
import {
  builtinTools,
  calculatorTool,
  clockTool,
  DEFAULT_TOOL_NAMES,
  toolRegistry,
  ToolError,
  wordCountTool,
  type ToolContext,
} from "../../services/tools/index.js";

const ctx: ToolContext = {
  allowRoots: [],
  allowHosts: [],
  signal: new AbortController().signal,
  cwd: process.cwd(),
};

async function calc(expression: string): Promise<string> {
  return calculatorTool.run(calculatorTool.parse({ expression }), ctx);
}

async function calcError(expression: string): Promise<ToolError> {
  const err: unknown = await calc(expression).then(
    (ok) => {
      throw new Error(`expected an error, got ${ok}`);
    },
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ToolError);
  return err as ToolError;
}

describe("registry", () => {
  it("exposes every built-in by name, read-only, with an object JSON schema", () => {
    const registry = toolRegistry([...builtinTools]);
    expect([...registry.keys()].sort()).toEqual(
      ["calculator", "clock", "http_get", "list_files", "read_file", "word_count"].sort(),
    );
    expect([...DEFAULT_TOOL_NAMES].sort()).toEqual([...registry.keys()].sort());
    for (const tool of builtinTools) {
      expect(tool.readOnly).toBe(true);
      expect(tool.jsonSchema).toMatchObject({ type: "object" });
      expect(tool.jsonSchema).not.toHaveProperty("$schema");
      expect(tool.description.length).toBeGreaterThan(10);
    }
    expect(calculatorTool.jsonSchema).toMatchObject({
      properties: { expression: { type: "string" } },
      required: ["expression"],
    });
    expect(registry.get("nope")).toBeUndefined();
  });

  it("rejects duplicate names", () => {
    expect(() => toolRegistry([calculatorTool, calculatorTool])).toThrow(/duplicate/);
  });

  it("parse reports zod issues as invalid_args, and accepts JSON text", () => {
    let caught: unknown;
    try {
      calculatorTool.parse({ expr: "1+1" });
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(ToolError);
    expect(caught).toMatchObject({ kind: "invalid_args", retryable: false });
    expect((caught as Error).message).toMatch(/calculator.*expression/);
    expect(calculatorTool.parse('{"expression":"1+1"}')).toEqual({ expression: "1+1" });
    expect(() => calculatorTool.parse("{not json")).toThrow(/not valid JSON/);
    expect(clockTool.parse(undefined)).toEqual({});
  });
});

describe("calculator", () => {
  it.each([
    ["17*23", "391"],
    ["2^10", "1024"],
    ["(1+2)*3", "9"],
    ["1+2*3", "7"],
    ["0.1+0.2", "0.3"],
    ["1/3", "1/3 (≈ 0.3333333333)"],
    ["-2/3", "-2/3 (≈ -0.6666666667)"],
    ["10/4", "2.5"],
    ["2^3^2", "512"],
    ["-2^2", "-4"],
    ["(-2)^2", "4"],
    ["2^-2", "0.25"],
    ["2**8", "256"],
    ["7 % 3", "1"],
    ["-7 % 3", "-1"],
    ["5.5 % 2", "1.5"],
    ["1.5e3 + 2E-2", "1500.02"],
    [".5 * 4", "2"],
    ["--3", "3"],
    ["sqrt(16/9)", "4/3 (≈ 1.333333333)"],
    ["sqrt(2.25)", "1.5"],
    ["1/7000000000000", "1/7000000000000 (≈ 1.428571429e-13)"],
    ["10^30/3", "1000000000000000000000000000000/3 (≈ 3.333333333e+29)"],
    ["0^0", "1"],
    ["(-1)^1000001", "-1"],
    ["1^100000000", "1"],
    ["  12345678901234567890 * 10  ", "123456789012345678900"],
  ])("%s = %s", async (expression, expected) => {
    expect(await calc(expression)).toBe(expected);
  });

  it("reports division by zero", async () => {
    const err = await calcError("1/0");
    expect(err.kind).toBe("failed");
    expect(err.message).toMatch(/division by zero/);
    expect((await calcError("5 % (2-2)")).message).toMatch(/division by zero/);
    expect((await calcError("0^-1")).message).toMatch(/division by zero/);
  });

  it("reports syntax errors with a position", async () => {
    const err = await calcError("2+");
    expect(err.kind).toBe("invalid_args");
    expect(err.message).toMatch(/position 3/);
    expect((await calcError("2 $ 3")).message).toMatch(/position 3.*'\$'/);
    expect((await calcError("(1+2")).message).toMatch(/expected '\)'/);
    expect((await calcError("2(3)")).message).toMatch(/position 2/);
    expect((await calcError("pi*2")).message).toMatch(/unknown name 'pi'/);
    expect((await calcError("   ")).message).toMatch(/empty/);
  });

  it("rejects non-integer exponents, irrational roots and huge results", async () => {
    expect((await calcError("2^0.5")).message).toMatch(/non-integer exponent 0.5/);
    const root = await calcError("sqrt(2)");
    expect(root.message).toMatch(/irrational.*1\.414213562/);
    expect((await calcError("sqrt(-4)")).message).toMatch(/negative/);
    expect((await calcError("2^100000000")).message).toMatch(/too large/);
    expect((await calcError("10^1000^1000")).message).toMatch(/too large/);
    expect((await calcError("1e999999999")).message).toMatch(/exponent/);
    // Repeated squaring must hit the size cap quickly rather than run away.
    expect((await calcError("(((((((2^64)^2)^2)^2)^2)^2)^2)^2")).message).toMatch(/too large/);
  });

  it("rejects overlong input at parse time and at run time", async () => {
    const long = "1+".repeat(600) + "1";
    expect(() => calculatorTool.parse({ expression: long })).toThrow(ToolError);
    await expect(calculatorTool.run({ expression: long }, ctx)).rejects.toMatchObject({
      kind: "invalid_args",
      message: expect.stringMatching(/too long/) as unknown,
    });
  });

  it("survives deep nesting within the length limit", async () => {
    expect(await calc("(".repeat(400) + "1" + ")".repeat(400))).toBe("1");
    expect(await calc("-".repeat(999) + "1")).toBe("-1");
  });
});

describe("clock", () => {
  const fixed: ToolContext = { ...ctx, now: () => new Date("2024-07-01T12:34:56.789Z") };

  it("defaults to UTC", async () => {
    expect(await clockTool.run(clockTool.parse({}), fixed)).toBe(
      "2024-07-01T12:34:56+00:00 UTC (Monday)",
    );
    expect(await clockTool.run({ timezone: "" }, fixed)).toMatch(/^2024-07-01T12:34:56\+00:00 UTC/);
  });

  it("converts to an IANA zone with its offset", async () => {
    expect(await clockTool.run({ timezone: "Europe/Berlin" }, fixed)).toBe(
      "2024-07-01T14:34:56+02:00 Europe/Berlin (Monday)",
    );
    expect(await clockTool.run({ timezone: "America/New_York" }, fixed)).toBe(
      "2024-07-01T08:34:56-04:00 America/New_York (Monday)",
    );
    expect(await clockTool.run({ timezone: "Asia/Kolkata" }, fixed)).toBe(
      "2024-07-01T18:04:56+05:30 Asia/Kolkata (Monday)",
    );
  });

  it("uses the real clock without an override", async () => {
    const out = await clockTool.run({ timezone: "UTC" }, ctx);
    const stamp = out.slice(0, 19) + "Z";
    expect(Math.abs(Date.parse(stamp) - Date.now())).toBeLessThan(5_000);
  });

  it("rejects unknown zones as invalid_args", async () => {
    await expect(clockTool.run({ timezone: "Mars/Olympus" }, fixed)).rejects.toMatchObject({
      kind: "invalid_args",
      message: expect.stringMatching(/unknown time zone 'Mars\/Olympus'/) as unknown,
    });
  });
});

describe("word_count", () => {
  it.each([
    ["", "words: 0\ncharacters: 0\nlines: 0"],
    ["hello world", "words: 2\ncharacters: 11\nlines: 1"],
    ["one two\nthree\n", "words: 3\ncharacters: 14\nlines: 2"],
    ["  spaced   out  \r\n\r\nend", "words: 3\ncharacters: 23\nlines: 3"],
    ["héllo 👋", "words: 2\ncharacters: 7\nlines: 1"],
  ])("%j", async (text, expected) => {
    expect(await wordCountTool.run(wordCountTool.parse({ text }), ctx)).toBe(expected);
  });
});
