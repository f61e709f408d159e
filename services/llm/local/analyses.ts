// Extractive analyses for the local model (key points, summary) and a JSON-Schema filler that
// turns them into a value the caller's schema accepts. Nothing is generated: every string comes
// from the input text, every number is a count or the lexicon score.

import { analyzeSentiment, type SentimentResult } from "./sentiment.js";
import {
  countWords,
  rankSentences,
  splitClauses,
  splitSentences,
  truncate,
  type Sentence,
} from "./text.js";

/** Longest key point, in characters: a whole sentence as a rule; only a run-on one is cut at a word boundary with "…". */
export const MAX_POINT_CHARS = 400;
// A string filled from "the top sentence" is capped so one run-on line cannot flood a field.
const MAX_FILLED_STRING = 500;
// $ref chains deeper than this are treated as recursion and filled minimally.
const MAX_DEPTH = 12;

/** One input text with its sentences ranked once; every analysis reads from here. */
export class TextAnalysis {
  readonly sentences: Sentence[];
  /** Sentence indices, best first (TextRank, ties by term frequency then position). */
  readonly ranking: number[];
  private sentimentResult: SentimentResult | undefined;

  constructor(readonly text: string) {
    this.sentences = splitSentences(text);
    this.ranking = rankSentences(this.sentences);
  }

  /** Lexicon sentiment of the whole text (computed on first use). */
  get sentiment(): SentimentResult {
    this.sentimentResult ??= analyzeSentiment(this.text);
    return this.sentimentResult;
  }

  /** The sentence at rank `rank` (wrapping around), or "" for an empty text. */
  rankedSentence(rank: number): string {
    const n = this.ranking.length;
    if (n === 0) return "";
    const index = this.ranking[((rank % n) + n) % n] ?? 0;
    return this.sentences[index]?.text ?? "";
  }

  /** The `k` best sentences, in their original order. */
  topSentences(k: number): string[] {
    return this.ranking
      .slice(0, k)
      .sort((a, b) => a - b)
      .map((i) => this.sentences[i]?.text ?? "");
  }

  /**
   * 3–5 key points: the best-ranked sentences in original order, one point per three sentences.
   * A text with fewer sentences than that is split into clauses; a text too short even for
   * that yields fewer points rather than repeated ones.
   */
  keyPoints(): string[] {
    const n = this.sentences.length;
    const target = Math.min(5, Math.max(3, Math.ceil(n / 3)));
    let picked: string[];
    if (n >= target) {
      picked = this.topSentences(target);
    } else {
      const clauses = this.sentences.flatMap((s) => {
        const parts = splitClauses(s.text);
        return parts.length > 1 ? parts : [s.text];
      });
      const units = clauses.map((text, index) => ({ text, index }));
      picked = rankSentences(units)
        .slice(0, target)
        .sort((a, b) => a - b)
        .map((i) => units[i]?.text ?? "");
    }
    return picked.map((p) => truncate(p, MAX_POINT_CHARS));
  }

  /** A paragraph of the 2 (or, from six sentences on, 3) best sentences in original order. */
  summary(): string {
    if (this.sentences.length === 0) return "The input text is empty.";
    const k = this.sentences.length >= 6 ? 3 : 2;
    return this.topSentences(k)
      .map((s) => (/[.!?…]["'”’)\]]*$/u.test(s) ? s : `${s}.`))
      .join(" ");
  }

  /** Counts used to fill numeric fields. */
  get counts() {
    return {
      words: countWords(this.text),
      sentences: this.sentences.length,
      characters: this.text.length,
      paragraphs: this.text.split(/\n\s*\n/).filter((p) => p.trim() !== "").length,
    };
  }
}

/** The hint the built-in analyses give the schema filler, by schema name. */
export function analysisHint(schemaName: string, analysis: TextAnalysis): unknown {
  switch (schemaName) {
    case "sentiment":
      return { ...analysis.sentiment };
    case "key_points":
      return { points: analysis.keyPoints() };
    case "summary":
      return { summary: analysis.summary() };
    default:
      return undefined;
  }
}

type Schema = Record<string, unknown>;

interface FillContext {
  root: Schema;
  analysis: TextAnalysis;
  depth: number;
  /** Which ranked sentence string fields use: array element i reads sentence rank i. */
  focus: number;
}

const isRecord = (v: unknown): v is Record<string, unknown> =>
  typeof v === "object" && v !== null && !Array.isArray(v);

/**
 * Produces a value that validates against `schema`, preferring `hint` wherever the hint has the
 * right type and then applying the schema's limits (enum, min/max, lengths, item counts).
 * Without a hint: strings → a ranked sentence (the summary for fields named like "summary"),
 * string arrays → key points, numbers → counts (words by default; sentences, characters,
 * paragraphs or the sentiment score when the field name says so), booleans → false,
 * enums → the sentiment label when listed, else the first value. `pattern`, `format` and
 * `uniqueItems` are not enforced.
 */
export function fillSchema(schema: unknown, analysis: TextAnalysis, hint?: unknown): unknown {
  const root = isRecord(schema) ? schema : {};
  return fill(root, { root, analysis, depth: 0, focus: 0 }, hint, "");
}

function fill(schema: unknown, ctx: FillContext, hint: unknown, name: string): unknown {
  if (!isRecord(schema)) return typeof hint === "string" ? hint : stringFor(name, ctx);
  if (ctx.depth > MAX_DEPTH) return minimal(schema);
  const deeper = { ...ctx, depth: ctx.depth + 1 };

  if (typeof schema.$ref === "string") {
    const { $ref, ...rest } = schema;
    return fill({ ...resolveRef(ctx.root, $ref), ...rest }, deeper, hint, name);
  }
  if ("const" in schema) return schema.const;
  if (Array.isArray(schema.enum) && schema.enum.length > 0) return pickEnum(schema.enum, ctx, hint);

  const branches = schema.anyOf ?? schema.oneOf;
  if (Array.isArray(branches) && branches.length > 0) {
    const candidates = branches.map((b) => (isRecord(b) ? b : {}));
    const { anyOf: _a, oneOf: _o, ...rest } = schema;
    const chosen =
      (hint !== undefined && candidates.find((b) => typeMatches(b, hint))) ||
      candidates.find((b) => b.type !== "null") ||
      candidates[0] ||
      {};
    return fill({ ...rest, ...chosen }, deeper, hint, name);
  }
  if (Array.isArray(schema.allOf)) {
    const { allOf, ...rest } = schema;
    return fill(mergeAll([rest, ...allOf.filter(isRecord)]), deeper, hint, name);
  }

  switch (typeOf(schema, hint)) {
    case "object":
      return fillObject(schema, deeper, hint);
    case "array":
      return fillArray(schema, deeper, hint, name);
    case "number":
      return fillNumber(schema, ctx, hint, name, false);
    case "integer":
      return fillNumber(schema, ctx, hint, name, true);
    case "boolean":
      return typeof hint === "boolean" ? hint : false;
    case "null":
      return null;
    default:
      return fillString(schema, ctx, hint, name);
  }
}

function typeOf(schema: Schema, hint: unknown): string {
  const t = schema.type;
  if (typeof t === "string") return t;
  if (Array.isArray(t)) {
    const types = t.filter((x): x is string => typeof x === "string");
    const hinted = types.find((x) => typeMatches({ type: x }, hint));
    return hinted ?? types.find((x) => x !== "null") ?? types[0] ?? "string";
  }
  if (isRecord(schema.properties)) return "object";
  if (schema.items !== undefined || schema.prefixItems !== undefined) return "array";
  if (hint === null) return "null";
  if (Array.isArray(hint)) return "array";
  if (typeof hint === "object") return "object";
  if (typeof hint === "number" || typeof hint === "boolean") return typeof hint;
  return "string";
}

function typeMatches(schema: Schema, hint: unknown): boolean {
  switch (schema.type) {
    case "string":
      return typeof hint === "string";
    case "number":
      return typeof hint === "number";
    case "integer":
      return Number.isInteger(hint);
    case "boolean":
      return typeof hint === "boolean";
    case "null":
      return hint === null;
    case "array":
      return Array.isArray(hint);
    case "object":
      return isRecord(hint);
    default:
      return false;
  }
}

function fillObject(schema: Schema, ctx: FillContext, hint: unknown): Record<string, unknown> {
  const properties = isRecord(schema.properties) ? schema.properties : {};
  const required = Array.isArray(schema.required)
    ? schema.required.filter((k): k is string => typeof k === "string")
    : [];
  const hints = isRecord(hint) ? hint : {};
  const out: Record<string, unknown> = {};
  // Optional properties are filled too: strict OpenAI schemas list every property as required,
  // and for the others a filled field is more useful than a missing one.
  for (const key of [...Object.keys(properties), ...required]) {
    if (!(key in out)) out[key] = fill(properties[key] ?? {}, ctx, hints[key], key);
  }
  return out;
}

function fillArray(schema: Schema, ctx: FillContext, hint: unknown, name: string): unknown[] {
  const prefix = Array.isArray(schema.prefixItems) ? schema.prefixItems : [];
  const items = isRecord(schema.items) ? schema.items : {};
  const minItems = Math.max(num(schema.minItems) ?? 0, prefix.length);
  const maxItems = schema.items === false ? prefix.length : (num(schema.maxItems) ?? Infinity);

  let hints: unknown[];
  if (Array.isArray(hint)) {
    hints = hint;
  } else if (isStringSchema(items, ctx.root)) {
    hints = ctx.analysis.keyPoints();
  } else {
    // Arrays of objects or numbers: one element per top sentence, at most three.
    hints = new Array<unknown>(Math.min(3, Math.max(1, ctx.analysis.sentences.length))).fill(
      undefined,
    );
  }
  const count = Math.min(Math.max(hints.length, minItems), maxItems);
  const element = name.replace(/s$/, "");
  return Array.from({ length: count }, (_, i) =>
    fill(prefix[i] ?? items, { ...ctx, focus: i }, hints[i], element),
  );
}

function isStringSchema(schema: Schema, root: Schema): boolean {
  const resolved = typeof schema.$ref === "string" ? resolveRef(root, schema.$ref) : schema;
  return (
    resolved.type === "string" ||
    (Array.isArray(resolved.type) && resolved.type.includes("string")) ||
    (resolved.type === undefined && !isRecord(resolved.properties) && resolved.items === undefined)
  );
}

function fillString(schema: Schema, ctx: FillContext, hint: unknown, name: string): string {
  let s = typeof hint === "string" ? hint : stringFor(name, ctx);
  const minLength = num(schema.minLength) ?? 0;
  // Too short (or an empty text): extend with the next sentences, then pad as a last resort.
  for (let rank = ctx.focus + 1; s.length < minLength && rank <= ctx.focus + 20; rank++) {
    const next = ctx.analysis.rankedSentence(rank);
    if (next === "") break;
    s = s === "" ? next : `${s} ${next}`;
  }
  if (s.length < minLength) s = s.padEnd(minLength, ".");
  const maxLength = num(schema.maxLength);
  return maxLength === undefined ? s : truncate(s, maxLength);
}

function stringFor(name: string, ctx: FillContext): string {
  if (/summary|overview|abstract|synopsis|gist|tl;?dr/i.test(name)) return ctx.analysis.summary();
  return truncate(ctx.analysis.rankedSentence(ctx.focus), MAX_FILLED_STRING);
}

function fillNumber(
  schema: Schema,
  ctx: FillContext,
  hint: unknown,
  name: string,
  integer: boolean,
): number {
  const lo = num(schema.minimum) ?? -Infinity;
  const hi = num(schema.maximum) ?? Infinity;
  let v: number;
  if (typeof hint === "number" && Number.isFinite(hint)) {
    v = hint;
  } else if (/score|sentiment|polarity/i.test(name)) {
    // The lexicon score lives in [-1, 1]; a bounded field gets it mapped linearly onto its range.
    const s = ctx.analysis.sentiment.score;
    v = Number.isFinite(lo) && Number.isFinite(hi) ? lo + ((s + 1) / 2) * (hi - lo) : s;
  } else {
    const c = ctx.analysis.counts;
    if (/sentence/i.test(name)) v = c.sentences;
    else if (/paragraph/i.test(name)) v = c.paragraphs;
    else if (/char|length/i.test(name)) v = c.characters;
    else v = c.words;
  }
  if (integer) v = Math.round(v);
  v = Math.min(Math.max(v, integer ? Math.ceil(lo) : lo), integer ? Math.floor(hi) : hi);

  const exLo = num(schema.exclusiveMinimum);
  const exHi = num(schema.exclusiveMaximum);
  if (exLo !== undefined && v <= exLo) {
    v = integer ? Math.floor(exLo) + 1 : exHi !== undefined ? (exLo + exHi) / 2 : exLo + 1;
  }
  if (exHi !== undefined && v >= exHi) {
    v = integer ? Math.ceil(exHi) - 1 : exLo !== undefined ? (exLo + exHi) / 2 : exHi - 1;
  }
  const step = num(schema.multipleOf);
  if (step !== undefined && step > 0) v = Math.round(v / step) * step;
  return Math.round(v * 1e6) / 1e6 + 0;
}

function pickEnum(values: unknown[], ctx: FillContext, hint: unknown): unknown {
  const key = JSON.stringify(hint);
  const hinted = values.find((v) => JSON.stringify(v) === key);
  if (hint !== undefined && hinted !== undefined) return hinted;
  // An enum that lists sentiment labels is almost certainly asking for one.
  if (values.includes(ctx.analysis.sentiment.label)) return ctx.analysis.sentiment.label;
  return values[0];
}

function minimal(schema: Schema): unknown {
  const t = Array.isArray(schema.type) ? schema.type : [schema.type];
  if (t.includes("null")) return null;
  if (t.includes("array")) return [];
  if (t.includes("object") || isRecord(schema.properties)) return {};
  if (t.includes("number") || t.includes("integer")) return num(schema.minimum) ?? 0;
  if (t.includes("boolean")) return false;
  return "";
}

function resolveRef(root: Schema, ref: string): Schema {
  if (!ref.startsWith("#")) return {};
  let node: unknown = root;
  for (const raw of ref.slice(1).split("/").filter(Boolean)) {
    const part = decodeURIComponent(raw).replace(/~1/g, "/").replace(/~0/g, "~");
    node = isRecord(node) ? node[part] : undefined;
  }
  return isRecord(node) ? node : {};
}

function mergeAll(schemas: Schema[]): Schema {
  const merged: Schema = {};
  const properties: Schema = {};
  const required: unknown[] = [];
  for (const s of schemas) {
    Object.assign(merged, s);
    if (isRecord(s.properties)) Object.assign(properties, s.properties);
    if (Array.isArray(s.required)) required.push(...(s.required as unknown[]));
  }
  if (Object.keys(properties).length > 0) merged.properties = properties;
  if (required.length > 0) merged.required = required;
  return merged;
}

function num(v: unknown): number | undefined {
  return typeof v === "number" && Number.isFinite(v) ? v : undefined;
}
