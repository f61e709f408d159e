import { z } from "zod";
import type { AnalysisSpec } from "./types.js";

const sentiment = z.object({
  label: z.enum(["positive", "negative", "neutral", "mixed"]),
  score: z.number().min(-1).max(1),
  reason: z.string().describe("one line"),
});

const keyPoints = z.object({
  points: z.array(z.string().describe("a short key point")).min(1),
});

const summary = z.object({ summary: z.string().describe("one paragraph") });

const freeText = z.object({ result: z.string() });

function jsonSchema(schema: z.ZodType): Record<string, unknown> {
  const { $schema: _ignored, ...rest } = z.toJSONSchema(schema) as Record<string, unknown>;
  return rest;
}

/** The analyses pagent ships, in the order they run and print. */
export const BUILTIN_ANALYSES: readonly AnalysisSpec[] = [
  {
    name: "sentiment",
    instruction:
      "Classify the overall sentiment of the text as positive, negative, neutral or mixed, give a score from -1 (very negative) to 1 (very positive) and a one-line reason.",
    schema: jsonSchema(sentiment),
  },
  {
    name: "key-points",
    instruction: "List the key points of the text as 3 to 5 short statements.",
    schema: jsonSchema(keyPoints),
  },
  {
    name: "summary",
    instruction: "Summarise the text in one paragraph.",
    schema: jsonSchema(summary),
  },
];

/** Output shape of a user analysis that brings no schema of its own. */
export const FREE_TEXT_SCHEMA = jsonSchema(freeText);

/** The name sent as `response_format.json_schema.name` (OpenAI allows [a-zA-Z0-9_-]). */
export function schemaName(analysisName: string): string {
  return analysisName.replace(/[^A-Za-z0-9_]/g, "_").slice(0, 64) || "analysis";
}

const validators = new Map<string, z.ZodType>();

/** Parses and validates a model's answer; returns the value or a message to send back to the model. */
export function validateAnswer(
  spec: AnalysisSpec,
  content: string,
): { ok: true; value: unknown } | { ok: false; error: string } {
  let parsed: unknown;
  try {
    parsed = JSON.parse(stripFences(content));
  } catch (error) {
    return { ok: false, error: `not valid JSON (${(error as Error).message})` };
  }
  const key = JSON.stringify(spec.schema);
  let validator = validators.get(key);
  if (!validator) {
    validator = z.fromJSONSchema(spec.schema);
    validators.set(key, validator);
  }
  const result = validator.safeParse(parsed);
  if (result.success) return { ok: true, value: result.data };
  return { ok: false, error: z.prettifyError(result.error).replace(/\n/g, "; ") };
}

/** Models often wrap JSON in a Markdown fence even when told not to. */
function stripFences(content: string): string {
  const match = /^\s*```(?:json)?\s*([\s\S]*?)\s*```\s*$/i.exec(content);
  return match ? match[1]! : content;
}

/**
 * How the built-in analyses merge a long input's chunk results; used only when the analysis is the
 * built-in one (a config analysis of the same name with its own instruction gets the generic merge).
 */
const BUILTIN_REDUCE: Record<string, string> = {
  sentiment:
    "The text holds sentiment judgements (label (score): reason) of consecutive parts of one long document, in order, separated by blank lines. Give the sentiment of the whole document: one label (positive, negative, neutral or mixed), one score from -1 to 1 that weighs the parts by what they say, and a one-line reason.",
  "key-points":
    "The text holds the key points of consecutive parts of one long document, in order, one a line. Merge them into the 3 to 7 key points of the whole document: drop duplicates and points that say the same thing, keep the most important, each a short statement.",
  summary:
    "The text holds summaries of consecutive parts of one long document, in order, separated by blank lines. Summarise the whole document in one paragraph.",
};

/** What a custom analysis does with its chunk results unless its config says otherwise (`reduce`). */
export const DEFAULT_REDUCE = "Merge these partial results into one answer of the same schema.";

/** The map step of a long input: the analysis, told that it sees one part. */
export function mapSpec(analysis: AnalysisSpec): AnalysisSpec {
  return {
    name: analysis.name,
    instruction: `${analysis.instruction}\nThe text is one part of a longer document: answer for this part alone.`,
    schema: analysis.schema,
  };
}

/** The reduce step: one answer, of the analysis's schema, from the results of every chunk. */
export function reduceSpec(analysis: AnalysisSpec): AnalysisSpec {
  const builtin = BUILTIN_ANALYSES.find((b) => b.name === analysis.name);
  const instruction =
    builtin?.instruction === analysis.instruction && analysis.reduce === undefined
      ? BUILTIN_REDUCE[analysis.name]!
      : `The text holds partial results of this task, one for each consecutive part of one long document, in order, separated by blank lines: "${analysis.instruction}"\n${analysis.reduce ?? DEFAULT_REDUCE}`;
  return { name: analysis.name, instruction, schema: analysis.schema };
}

/**
 * The reduce step's input: each chunk's result as text, in order, separated by blank lines. Key
 * points repeated word for word by two chunks (the overlap sees a sentence twice) are given once.
 */
export function partialsText(analysis: AnalysisSpec, outputs: unknown[]): string {
  if (analysis.name === "key-points" && outputs.every((o) => Array.isArray(pointsOf(o)))) {
    const seen = new Set<string>();
    const lines: string[] = [];
    for (const point of outputs.flatMap((o) => pointsOf(o)!)) {
      const norm = point.toLowerCase().replace(/\W+/g, " ").trim();
      if (seen.has(norm)) continue;
      seen.add(norm);
      lines.push(`- ${point}`);
    }
    return lines.join("\n");
  }
  return outputs.map(partialText).join("\n\n");
}

function pointsOf(output: unknown): string[] | undefined {
  const points = (output as { points?: unknown } | null)?.points;
  return Array.isArray(points) && points.every((p) => typeof p === "string") ? points : undefined;
}

function partialText(output: unknown): string {
  const o = output as Record<string, unknown> | null;
  if (o && typeof o.label === "string" && typeof o.score === "number")
    return `${o.label} (${o.score.toFixed(2)}): ${String(o.reason)}`;
  if (o && Object.keys(o).length === 1 && typeof Object.values(o)[0] === "string")
    return Object.values(o)[0] as string;
  return JSON.stringify(output);
}
