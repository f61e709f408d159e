/**
 * Reading the fake OpenAI server's request log from a test: which analysis and which input a
 * request was for, and how requests overlapped in time.
 */
import {
  exampleFromJsonSchema,
  type FakeLogEntry,
  type FakeReply,
  type FakeReplyCommon,
  type FakeRequest,
} from "./fake-openai.js";

interface Message {
  role?: string;
  content?: unknown;
}

function text(content: unknown): string {
  if (typeof content === "string") return content;
  if (Array.isArray(content)) {
    return content
      .map((part) =>
        part && typeof part === "object" && typeof (part as { text?: unknown }).text === "string"
          ? (part as { text: string }).text
          : "",
      )
      .join("");
  }
  return "";
}

export function messagesOf(entry: FakeLogEntry): Message[] {
  const body = entry.body as { messages?: Message[] } | undefined;
  return Array.isArray(body?.messages) ? body.messages : [];
}

/** Text of the first system message of a logged request. */
export function systemOf(entry: FakeLogEntry): string {
  return text(
    messagesOf(entry).find((m) => m.role === "system" || m.role === "developer")?.content,
  );
}

/** Text of the first user message: the analyzed input (later user messages are validation retries). */
export function inputOf(entry: FakeLogEntry): string {
  return text(messagesOf(entry).find((m) => m.role === "user")?.content);
}

/** The built-in instructions' distinctive words (services/analyses.ts). */
export const BUILTIN_MARKERS = {
  sentiment: /sentiment/i,
  "key-points": /key points/i,
  summary: /summarise/i,
} as const;

/** Which analysis a request (or a responder's request) is for, by its system prompt. */
export function analysisOfSystem(system: string, extra: Record<string, RegExp> = {}): string {
  for (const [name, pattern] of Object.entries({ ...BUILTIN_MARKERS, ...extra })) {
    if (pattern.test(system)) return name;
  }
  return "unknown";
}

export function analysisOf(entry: FakeLogEntry, extra: Record<string, RegExp> = {}): string {
  return analysisOfSystem(systemOf(entry), extra);
}

/** Requests per analysis name. */
export function countByAnalysis(
  entries: FakeLogEntry[],
  extra: Record<string, RegExp> = {},
): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const entry of entries) {
    const name = analysisOf(entry, extra);
    counts[name] = (counts[name] ?? 0) + 1;
  }
  return counts;
}

/** Whether two requests were in flight at the same moment. */
export function overlaps(a: FakeLogEntry, b: FakeLogEntry): boolean {
  return a.startedAt < (b.endedAt ?? Infinity) && b.startedAt < (a.endedAt ?? Infinity);
}

/**
 * The highest number of distinct keys (e.g. inputs) with a request in flight at one moment. The
 * count only rises at a start, so checking every start time covers every moment.
 */
export function maxDistinctInFlight(
  entries: FakeLogEntry[],
  key: (entry: FakeLogEntry) => string,
): number {
  let max = 0;
  for (const at of entries) {
    const t = at.startedAt;
    const open = new Set(
      entries.filter((e) => e.startedAt <= t && t < (e.endedAt ?? Infinity)).map(key),
    );
    max = Math.max(max, open.size);
  }
  return max;
}

/** What the fake's default responder does: a schema-valid example for json_schema requests. */
export function schemaAnswer(req: FakeRequest, extra: FakeReplyCommon = {}): FakeReply {
  const rf = req.responseFormat as
    { type?: string; json_schema?: { schema?: unknown } } | undefined;
  if (rf?.type === "json_schema" && rf.json_schema) {
    return { json: exampleFromJsonSchema(rf.json_schema.schema), ...extra };
  }
  return { content: "ok", ...extra };
}
