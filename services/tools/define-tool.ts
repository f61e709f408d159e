import { z } from "zod";
import { ToolError, type ToolContext, type ToolDefinition } from "./types.js";

/** Renders zod issues as one line per issue, readable by an LLM that has to fix its call. */
export function formatIssues(issues: readonly z.core.$ZodIssue[]): string {
  return issues
    .map((issue) => {
      const where = issue.path.length > 0 ? issue.path.map(String).join(".") : "(arguments)";
      return `${where}: ${issue.message}`;
    })
    .join("; ");
}

/** Normalises what LLM SDKs hand over as arguments: parsed objects, JSON text, or nothing at all. */
export function normaliseRawArgs(toolName: string, raw: unknown): unknown {
  if (raw === undefined || raw === null) return {};
  if (typeof raw !== "string") return raw;
  if (raw.trim() === "") return {};
  try {
    return JSON.parse(raw) as unknown;
  } catch (err) {
    throw new ToolError(
      "invalid_args",
      `invalid arguments for ${toolName}: not valid JSON (${(err as Error).message})`,
    );
  }
}

/** Parses raw arguments with a zod schema, turning failures into ToolError "invalid_args". */
export function parseArgs<A>(toolName: string, schema: z.ZodType<A>, raw: unknown): A {
  const result = schema.safeParse(normaliseRawArgs(toolName, raw));
  if (!result.success) {
    throw new ToolError(
      "invalid_args",
      `invalid arguments for ${toolName}: ${formatIssues(result.error.issues)}`,
    );
  }
  return result.data;
}

/** JSON Schema for the LLM; `$schema` is dropped because some providers reject unknown keywords. */
export function toLlmJsonSchema(schema: z.ZodType): Record<string, unknown> {
  const { $schema: _ignored, ...rest } = z.toJSONSchema(schema, { io: "input" }) as Record<
    string,
    unknown
  >;
  return rest;
}

/** Builds a ToolDefinition from a zod schema, deriving `jsonSchema` and `parse`. */
export function defineTool<A>(spec: {
  name: string;
  description: string;
  readOnly: boolean;
  pure?: boolean;
  argsSchema: z.ZodType<A>;
  run: (args: A, ctx: ToolContext) => Promise<string>;
}): ToolDefinition<A> {
  const { name, argsSchema } = spec;
  return {
    name,
    description: spec.description,
    readOnly: spec.readOnly,
    ...(spec.pure ? { pure: true } : {}),
    argsSchema,
    jsonSchema: toLlmJsonSchema(argsSchema),
    parse: (raw) => parseArgs(name, argsSchema, raw),
    // async so synchronous throws in a tool body still surface as rejections.
    run: async (args, ctx) => spec.run(args, ctx),
  };
}

/** Throws ToolError "failed" when the caller has already given up, so no work starts. */
export function throwIfAborted(signal: AbortSignal, toolName: string): void {
  if (signal.aborted) {
    throw new ToolError("failed", `${toolName} aborted`, { cause: signal.reason });
  }
}
