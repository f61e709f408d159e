import { describe, expect, it } from "vitest";
import { chunkKey, estimateTokens, overlapTokens, splitChunks } from "../../services/chunking.js";
import {
  BUILTIN_ANALYSES,
  DEFAULT_REDUCE,
  partialsText,
  reduceSpec,
} from "../../services/analyses.js";
import { longText } from "../helpers/long-text.js";

/** The text with the overlap of every chunk but the first taken off: the original again. */
function bodies(chunks: string[], text: string): string {
  let at = 0;
  let joined = "";
  for (const chunk of chunks) {
    const start = text.indexOf(chunk, Math.max(0, at - chunk.length));
    expect(start).toBeGreaterThanOrEqual(0);
    expect(start).toBeLessThanOrEqual(at);
    joined += chunk.slice(at - start);
    at = start + chunk.length;
  }
  return joined;
}

describe("estimateTokens", () => {
  it("counts 4 Latin characters a token and one for any other character", () => {
    expect(estimateTokens("abcdefgh")).toBe(2);
    expect(estimateTokens("日本語")).toBe(3);
    expect(estimateTokens("")).toBe(0);
  });
});

describe("splitChunks", () => {
  it("keeps a text that fits as one chunk, unchanged", () => {
    expect(splitChunks("Short text.\n\nTwo paragraphs.", 2000)).toEqual([
      "Short text.\n\nTwo paragraphs.",
    ]);
  });

  it("covers the whole text in order, within the budget, with a small overlap", () => {
    const text = longText(200_000);
    const chunks = splitChunks(text, 2000);
    expect(chunks.length).toBeGreaterThan(text.length / 4 / 2000);
    for (const chunk of chunks) expect(estimateTokens(chunk)).toBeLessThanOrEqual(2000);
    expect(bodies(chunks, text)).toBe(text);
    // Every chunk but the first starts inside the previous one, at a sentence start.
    for (let i = 1; i < chunks.length; i++) {
      expect(chunks[i - 1]!.endsWith(chunks[i]!.slice(0, 20))).toBe(false);
      expect(chunks[i]).toMatch(/^Paragraph \d+ sentence \d+/);
    }
    expect(overlapTokens(2000)).toBe(200);
  });

  it("is deterministic", () => {
    const text = longText(80_000);
    expect(splitChunks(text, 1000)).toEqual(splitChunks(text, 1000));
  });

  it("moves only the chunks near an edit: the rest are byte-identical", () => {
    const text = longText(200_000);
    const before = splitChunks(text, 2000);
    const paragraphs = text.split("\n\n");
    let changed = 0;
    const trials = 20;
    for (let t = 0; t < trials; t++) {
      const p = 40 + t * 37;
      const edited = [...paragraphs];
      edited[p] = `${edited[p]} An added sentence changes this paragraph's length.`;
      const after = splitChunks(edited.join("\n\n"), 2000);
      const old = new Set(before);
      changed += after.filter((c) => !old.has(c)).length;
    }
    // A growing paragraph changes its chunk and, rarely, a neighbour: never everything after it.
    expect(changed / trials).toBeLessThan(2.5);
  });

  it("splits a paragraph longer than a chunk at sentences, and a sentence without spaces by length", () => {
    const sentence = "This sentence is one of many in a single enormous paragraph. ";
    const paragraph = sentence.repeat(400);
    const chunks = splitChunks(paragraph, 500);
    for (const chunk of chunks) expect(estimateTokens(chunk)).toBeLessThanOrEqual(500);
    expect(chunks.slice(1).every((c) => c.startsWith("This sentence"))).toBe(true);
    const blob = "x".repeat(50_000);
    const pieces = splitChunks(blob, 1000);
    for (const piece of pieces) expect(estimateTokens(piece)).toBeLessThanOrEqual(1000);
    expect(pieces.join("").length).toBeGreaterThanOrEqual(blob.length);
  });
});

describe("chunkKey", () => {
  const analysis = { name: "summary", instruction: "Summarise.", schema: {} };
  const model = { name: "m", baseUrl: "http://a/v1" };
  it("changes with the chunk, the analysis, the model and where it is reached", () => {
    const key = chunkKey(analysis, model, "text");
    expect(chunkKey(analysis, model, "text")).toBe(key);
    expect(chunkKey(analysis, model, "text!")).not.toBe(key);
    expect(chunkKey({ ...analysis, instruction: "Other." }, model, "text")).not.toBe(key);
    expect(chunkKey(analysis, { ...model, name: "n" }, "text")).not.toBe(key);
    expect(chunkKey(analysis, { ...model, baseUrl: "http://b/v1" }, "text")).not.toBe(key);
  });
});

describe("reduce steps", () => {
  it("merge key points given word for word by two chunks once, in order", () => {
    const keyPoints = BUILTIN_ANALYSES.find((a) => a.name === "key-points")!;
    expect(
      partialsText(keyPoints, [{ points: ["A rose.", "B fell."] }, { points: ["b fell", "C."] }]),
    ).toBe("- A rose.\n- B fell.\n- C.");
    expect(reduceSpec(keyPoints).instruction).toMatch(/drop duplicates/);
  });

  it("give a custom analysis the default merge, or its own reduce instruction", () => {
    const custom = { name: "risks", instruction: "List the risks.", schema: {} };
    expect(reduceSpec(custom).instruction).toContain(DEFAULT_REDUCE);
    expect(reduceSpec({ ...custom, reduce: "Keep the five worst." }).instruction).toContain(
      "Keep the five worst.",
    );
    expect(partialsText(custom, [{ result: "one" }, { result: "two" }])).toBe("one\n\ntwo");
  });
});
