import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { Readable } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { UsageError } from "../../src/errors.js";
import { checkBytes, readInputs, type Input, type InputSources } from "../../src/inputs.js";

const MAX = 1024;

function stdin(text: string | Buffer | undefined, isTTY = false): InputSources["stdin"] {
  const stream = Readable.from(text === undefined ? [] : [Buffer.from(text)]);
  return Object.assign(stream, { isTTY });
}

function errorOf(input: Input | undefined): string {
  expect(input).toBeDefined();
  expect(input).toHaveProperty("error");
  return (input as { error: string }).error;
}

function textOf(input: Input | undefined): string {
  expect(input).toBeDefined();
  expect(input).not.toHaveProperty("error");
  return (input as { text: string }).text;
}

async function usageError(promise: Promise<unknown>): Promise<UsageError> {
  const caught: unknown = await promise.then(
    () => undefined,
    (error: unknown) => error,
  );
  expect(caught).toBeInstanceOf(UsageError);
  expect((caught as UsageError).exitCode).toBe(2);
  return caught as UsageError;
}

describe("checkBytes", () => {
  it("valid UTF-8 text passes with its text and bytes", () => {
    const bytes = Buffer.from("héllo wörld ✓\n", "utf8");
    expect(checkBytes("a.txt", bytes, MAX)).toEqual({
      label: "a.txt",
      text: "héllo wörld ✓\n",
      bytes,
    });
  });

  it("an empty input is refused", () => {
    expect(errorOf(checkBytes("a.txt", Buffer.alloc(0), MAX))).toMatch(/^a\.txt: .*empty/);
  });

  it("a whitespace-only input is refused as empty", () => {
    expect(errorOf(checkBytes("a.txt", Buffer.from(" \n\t\r\n"), MAX))).toMatch(/empty/);
  });

  it("an input with NUL bytes is refused as binary", () => {
    expect(errorOf(checkBytes("img.png", Buffer.from([0x89, 0x50, 0x00, 0x47]), MAX))).toMatch(
      /binary/,
    );
  });

  it("invalid UTF-8 is refused with a hint to convert", () => {
    const latin1 = Buffer.from("caf\xe9 cr\xe8me", "latin1");
    const error = errorOf(checkBytes("old.txt", latin1, MAX));
    expect(error).toMatch(/not valid UTF-8/);
    expect(error).toContain("iconv");
  });

  it("an input over max-bytes is refused, naming the limit", () => {
    const error = errorOf(checkBytes("big.txt", Buffer.alloc(MAX + 1, "a"), MAX));
    expect(error).toContain(`larger than --max-bytes ${MAX}`);
  });

  it("an input of exactly max-bytes passes", () => {
    expect(textOf(checkBytes("edge.txt", Buffer.alloc(MAX, "a"), MAX))).toHaveLength(MAX);
  });
});

describe("readInputs", () => {
  let dir: string;
  let a: string;
  let b: string;

  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), "pagent-inputs-"));
    a = path.join(dir, "a.txt");
    b = path.join(dir, "b.txt");
    await writeFile(a, "alpha text");
    await writeFile(b, "beta text");
    await writeFile(path.join(dir, "empty.txt"), "");
    await writeFile(path.join(dir, "big.txt"), "x".repeat(MAX + 10));
    await mkdir(path.join(dir, "sub"));
  });

  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("reads files in the order given", async () => {
    const inputs = await readInputs({ files: [b, a], stdin: stdin(undefined), maxBytes: MAX });
    expect(inputs.map((i) => i.label)).toEqual([b, a]);
    expect(inputs.map(textOf)).toEqual(["beta text", "alpha text"]);
  });

  it("reports a missing file, a directory, an empty and a big file, keeping the good ones", async () => {
    const missing = path.join(dir, "missing.txt");
    const inputs = await readInputs({
      files: [
        a,
        missing,
        path.join(dir, "sub"),
        path.join(dir, "empty.txt"),
        path.join(dir, "big.txt"),
      ],
      stdin: stdin(undefined),
      maxBytes: MAX,
    });
    expect(inputs).toHaveLength(5);
    expect(textOf(inputs[0])).toBe("alpha text");
    expect(errorOf(inputs[1])).toBe(`${missing}: no such file`);
    expect(errorOf(inputs[2])).toMatch(/is a directory/);
    expect(errorOf(inputs[3])).toMatch(/empty/);
    expect(errorOf(inputs[4])).toMatch(/over --max-bytes/);
  });

  it("reads stdin for - among files, labelled -", async () => {
    const inputs = await readInputs({
      files: [a, "-"],
      stdin: stdin("from the pipe"),
      maxBytes: MAX,
    });
    expect(inputs.map((i) => i.label)).toEqual([a, "-"]);
    expect(textOf(inputs[1])).toBe("from the pipe");
  });

  it("reads stdin when no file is given and stdin is not a TTY", async () => {
    const inputs = await readInputs({ files: [], stdin: stdin("piped text"), maxBytes: MAX });
    expect(inputs).toEqual([{ label: "-", text: "piped text", bytes: Buffer.from("piped text") }]);
  });

  it("refuses an oversized stdin", async () => {
    const [input] = await readInputs({
      files: [],
      stdin: stdin("y".repeat(MAX * 3)),
      maxBytes: MAX,
    });
    expect(errorOf(input)).toMatch(/larger than --max-bytes/);
  });

  // Bug (minor): src/inputs.ts:86 stops reading one chunk past the limit and src/inputs.ts:23 then
  // reports that partial count as the input's size ("input is 1200 bytes") for a 3000-byte stdin.
  it("does not understate the size of an oversized stdin read in chunks", async () => {
    const chunks = Array.from({ length: 5 }, () => Buffer.alloc(600, "z"));
    const [input] = await readInputs({
      files: [],
      stdin: Object.assign(Readable.from(chunks), { isTTY: false }),
      maxBytes: MAX,
    });
    expect(errorOf(input)).not.toContain("input is 1200 bytes");
  });

  it("refuses an empty stdin", async () => {
    const [input] = await readInputs({ files: [], stdin: stdin(""), maxBytes: MAX });
    expect(errorOf(input)).toMatch(/^-: .*empty/);
  });

  it("a TTY stdin with no files is a usage error saying what to give", async () => {
    const error = await usageError(
      readInputs({ files: [], stdin: stdin(undefined, true), maxBytes: MAX }),
    );
    expect(error.message).toMatch(/FILE/);
    expect(error.message).toMatch(/--text/);
  });

  it("- twice is a usage error", async () => {
    await usageError(readInputs({ files: ["-", a, "-"], stdin: stdin("x"), maxBytes: MAX }));
  });

  it("--text is one input labelled text", async () => {
    const inputs = await readInputs({
      files: [],
      text: "inline words",
      stdin: stdin(undefined, true),
      maxBytes: MAX,
    });
    expect(inputs.map((i) => i.label)).toEqual(["text"]);
    expect(textOf(inputs[0])).toBe("inline words");
  });

  it("an empty --text is refused as empty", async () => {
    const [input] = await readInputs({
      files: [],
      text: "",
      stdin: stdin(undefined),
      maxBytes: MAX,
    });
    expect(errorOf(input)).toMatch(/empty/);
  });

  it("--text with files is a usage error", async () => {
    await usageError(
      readInputs({ files: [a], text: "inline", stdin: stdin(undefined), maxBytes: MAX }),
    );
  });
});
