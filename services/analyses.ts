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
