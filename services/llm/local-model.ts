/**
 * `--model local`: an offline, deterministic LangChain chat model built into pagent.
 *
 * It is NOT a language model. It is a small set of documented rules behind the same
 * `BaseChatModel` interface as `ChatOpenAI`, so the analysis and agent code paths are exercised
 * unchanged without a provider. The same input always gives the same output; it reads no clock
 * and uses no randomness. Token counts in `usage_metadata` are whitespace-separated words.
 *
 * Rules
 *
 * 1. Structured output (call option `response_format: {type: "json_schema", json_schema}`).
 *    The input text is the first human message; later messages (a rejected answer and
 *    "That answer was invalid: …") are ignored, so a retry gets the same, schema-conforming
 *    answer. The answer is JSON text. By schema name:
 *    - `sentiment` → {label, score, reason}: a built-in word lexicon (valences -5..+5), where a
 *      negator (not, never, don't, …) up to 3 words before a word flips it at half strength and
 *      an intensifier (very, really, …) scales it by 1.5 (softeners such as "slightly" by 0.5).
 *      score = sum / sqrt(sum² + 15), in [-1, 1]. Sentences are split at but/however/although/;
 *      and a part summing to ≥ +2 or ≤ -2 is strong. label = "mixed" when strong positive and
 *      strong negative parts both occur and the weaker side is at least a third of the
 *      stronger, else "neutral" when |score| < 0.3, else the sign of score. reason names up to
 *      three strongest words found.
 *    - `key_points` → {points}: 3–5 sentences (one per three sentences of input) ranked by
 *      TextRank over content words (stopwords removed), kept in original order, each cut to
 *      ≤ 400 characters (a run-on sentence is cut at a word boundary with "…"). Shorter texts are split into clauses.
 *    - `summary` → {summary}: the 2 best-ranked sentences (3 from six sentences on), in
 *      original order, as one paragraph.
 *    - any other name: a value built from the schema itself: strings → the top-ranked sentence
 *      (array element i gets the i-th; a field named like "summary" gets the summary), arrays
 *      of strings → the key points, arrays of objects → one object per top sentence (≤ 3),
 *      numbers → word count (sentence, paragraph or character count, or the sentiment score,
 *      when the field name says so), booleans → false, enums → the sentiment label if listed,
 *      else the first value; then clamped to the schema's enum/min/max/length/item limits.
 *      Instructions in the system message are not read.
 *    `response_format: {type: "json_object"}` answers {"summary": …}.
 *
 * 2. Agent (tools bound with `bindTools`, OpenAI function tools or LangChain tools; only the
 *    tool names matter). If tool results follow the last AI message, the answer is plain text
 *    with one sentence per result in the order of that message's tool calls ("17*23 = 391.",
 *    "The time in UTC is ….", "calculator (1/0) failed: …." for a result with status "error" or
 *    starting with "Error"). Otherwise the last human message is scanned and these calls are
 *    made, all in one turn, in the order they appear in the prompt, only for tools bound under
 *    exactly these names:
 *    - `calculator {expression}` per arithmetic expression: numbers with + - * / % ^ (× ÷ are
 *      read as * /) and parentheses, at least one binary operator; dates and clock times are not
 *      expressions, nor are digits inside words or paths;
 *    - `clock {timezone}` when the prompt asks the time or date ("what time", "current time",
 *      "time is it", "time in", "date today", …), one call per zone named: an IANA name
 *      (Europe/Paris), UTC or GMT, or a city that is the last part of an IANA name (Tokyo,
 *      New York); UTC when none is named;
 *    - `read_file {path}` per token with a file extension (README.md, ./src/a.ts), and, when the
 *      prompt says read/show/open/summarize/view/…, per slash path or README/LICENSE-style name;
 *    - `list_files {path}` for "list files …", "what files …", "which files …", with the path
 *      after in/under/inside/of (default "."), and for a path ending in "/" when the prompt
 *      says read/show/open;
 *    - `http_get {url}` per http(s) URL (the tool enforces its own allow-list);
 *    - `word_count {text}` per quoted text when the prompt says "count the words",
 *      "how many words", "word count" or "number of words" (or the text after a colon).
 *    If a tool declares a different single parameter name, that name is used. Call ids are
 *    `call_<turn>_<n>`, turn = number of AI messages so far + 1, n from 1. When nothing
 *    matches, the answer is a short text saying what the local model can do with the bound
 *    tools (and which request found no bound tool). `tool_choice: "none"` disables calls; a
 *    forced tool (by name, or "required"/"any" with nothing planned) is called with arguments
 *    filled from its parameter schema as in rule 1; `parallel_tool_calls: false` keeps the first.
 *
 * 3. No tools and no response_format: the answer is the rule-1 summary of the last human message.
 */

import type { BaseLanguageModelInput } from "@langchain/core/language_models/base";
import {
  BaseChatModel,
  type BaseChatModelCallOptions,
  type BaseChatModelParams,
} from "@langchain/core/language_models/chat_models";
import {
  AIMessage,
  ToolMessage,
  type AIMessageChunk,
  type BaseMessage,
  type ToolCall,
} from "@langchain/core/messages";
import type { ChatResult } from "@langchain/core/outputs";
import type { Runnable } from "@langchain/core/runnables";
import { convertToOpenAITool, isLangChainTool } from "@langchain/core/utils/function_calling";
import { toJsonSchema } from "@langchain/core/utils/json_schema";
import { isInteropZodSchema } from "@langchain/core/utils/types";
import type { ChatOpenAICallOptions } from "@langchain/openai";

import {
  directAnswer,
  finalAnswer,
  planToolCalls,
  type PlannedCall,
  type ToolOutcome,
  type ToolSpec,
} from "./local/agent.js";
import { TextAnalysis, analysisHint, fillSchema } from "./local/analyses.js";
import { countWords } from "./local/text.js";
import { LOCAL_MODEL_NAME } from "../types.js";

/** Call options: the ChatOpenAI shapes of `tools`, `tool_choice`, `response_format`, etc. */
export type LocalChatModelCallOptions = BaseChatModelCallOptions &
  Pick<ChatOpenAICallOptions, "tools" | "tool_choice" | "response_format" | "parallel_tool_calls">;

/** Anything `ChatOpenAI.bindTools` accepts (function tools, LangChain tools, built-ins). */
export type LocalToolInput = NonNullable<ChatOpenAICallOptions["tools"]>[number];

const isRecord = (v: unknown): v is Record<string, unknown> =>
  typeof v === "object" && v !== null && !Array.isArray(v);

/** pagent's offline, deterministic, rule-based chat model (not an LLM); see the rules above. */
export class LocalChatModel extends BaseChatModel<LocalChatModelCallOptions> {
  static override lc_name(): string {
    return "LocalChatModel";
  }

  /** No options are needed; `fields` are the usual LangChain ones (callbacks, tags, …). */
  constructor(fields: BaseChatModelParams = {}) {
    super(fields);
  }

  override _llmType(): string {
    return LOCAL_MODEL_NAME;
  }

  /** Binds tools like `ChatOpenAI.bindTools`: function tools are stored in OpenAI format. */
  override bindTools(
    tools: LocalToolInput[],
    kwargs?: Partial<LocalChatModelCallOptions>,
  ): Runnable<BaseLanguageModelInput, AIMessageChunk, LocalChatModelCallOptions> {
    const converted = tools.map((tool): LocalToolInput => {
      const spec = toToolSpec(tool);
      return spec === undefined ? tool : { type: "function", function: spec };
    });
    return this.withConfig({ tools: converted, ...kwargs });
  }

  /** Applies the rules in the comment at the top of this file. */
  override _generate(
    messages: BaseMessage[],
    options: this["ParsedCallOptions"],
  ): Promise<ChatResult> {
    options.signal?.throwIfAborted();
    const { content, calls } = respond(messages, options);

    const toolCalls: ToolCall[] = calls.map((c) => ({ ...c, type: "tool_call" }));
    const input = messages.reduce((n, m) => n + messageTokens(m), 0);
    const output =
      countWords(content) + toolCalls.reduce((n, c) => n + countWords(JSON.stringify(c.args)), 0);
    const usage = { input_tokens: input, output_tokens: output, total_tokens: input + output };
    const message = new AIMessage({
      content,
      tool_calls: toolCalls,
      usage_metadata: usage,
      response_metadata: { model_name: LOCAL_MODEL_NAME },
    });
    return Promise.resolve({
      generations: [{ text: content, message }],
      llmOutput: {
        tokenUsage: { promptTokens: input, completionTokens: output, totalTokens: input + output },
      },
    });
  }
}

interface Reply {
  content: string;
  calls: (PlannedCall & { id: string })[];
}

function respond(messages: BaseMessage[], options: LocalChatModelCallOptions): Reply {
  const tools = (options.tools ?? []).flatMap((t) => toToolSpec(t) ?? []);
  const format = options.response_format;
  const schema =
    format?.type === "json_schema"
      ? { name: format.json_schema.name, schema: jsonSchemaOf(format.json_schema.schema) }
      : undefined;

  if (tools.length > 0 && options.tool_choice !== "none") {
    const reply = agentTurn(messages, tools, options);
    // A structured agent answer: fill the schema from the text answer.
    if (schema !== undefined && reply.calls.length === 0) {
      return {
        content: JSON.stringify(fillSchema(schema.schema, new TextAnalysis(reply.content))),
        calls: [],
      };
    }
    return reply;
  }

  if (schema !== undefined) {
    const analysis = new TextAnalysis(inputText(messages));
    const value = fillSchema(schema.schema, analysis, analysisHint(schema.name, analysis));
    return { content: JSON.stringify(value), calls: [] };
  }
  const last = lastText(messages, "human");
  if (format?.type === "json_object") {
    return { content: JSON.stringify({ summary: new TextAnalysis(last).summary() }), calls: [] };
  }
  return { content: new TextAnalysis(last).summary(), calls: [] };
}

function agentTurn(
  messages: BaseMessage[],
  tools: ToolSpec[],
  options: LocalChatModelCallOptions,
): Reply {
  const prompt = lastText(messages, "human");
  const plan = planToolCalls(prompt, tools);

  let lastAi = -1;
  messages.forEach((m, i) => {
    if (m.type === "ai") lastAi = i;
  });
  const results = messages.slice(lastAi + 1).filter((m) => ToolMessage.isInstance(m));
  if (results.length > 0) {
    const previous = lastAi >= 0 ? messages[lastAi] : undefined;
    const calls = previous && AIMessage.isInstance(previous) ? (previous.tool_calls ?? []) : [];
    return { content: finalAnswer(outcomes(calls, results), prompt, plan.unavailable), calls: [] };
  }

  let calls = plan.calls;
  const forced = forcedTool(options.tool_choice, tools);
  if (forced?.byName === true) {
    calls = calls.filter((c) => c.name === forced.name);
  }
  // A forced call the rules did not plan gets arguments filled from the tool's schema.
  if (forced !== undefined && calls.length === 0) {
    const filled = fillSchema(forced.parameters ?? {}, new TextAnalysis(prompt));
    calls = [{ name: forced.name, args: isRecord(filled) ? filled : {} }];
  }
  if (options.parallel_tool_calls === false) calls = calls.slice(0, 1);
  if (calls.length === 0) return { content: directAnswer(tools, plan.unavailable), calls: [] };

  const turn = messages.filter((m) => m.type === "ai").length + 1;
  return { content: "", calls: calls.map((c, i) => ({ ...c, id: `call_${turn}_${i + 1}` })) };
}

/** Pairs the previous turn's calls with their results, in call order; strays go last. */
function outcomes(calls: readonly ToolCall[], results: ToolMessage[]): ToolOutcome[] {
  const used = new Set<ToolMessage>();
  const out: ToolOutcome[] = [];
  const toOutcome = (m: ToolMessage, call?: ToolCall): ToolOutcome => ({
    name: call?.name ?? m.name ?? "tool",
    args: call?.args ?? {},
    content: m.text,
    isError: m.status === "error" || /^\s*(?:error|exception)\b/iu.test(m.text),
  });
  for (const call of calls) {
    const result = results.find((m) => !used.has(m) && m.tool_call_id === call.id);
    if (result === undefined) continue;
    used.add(result);
    out.push(toOutcome(result, call));
  }
  for (const m of results) if (!used.has(m)) out.push(toOutcome(m));
  return out;
}

/** The tool a `tool_choice` forces, if any ("required"/"any" force the first bound tool). */
function forcedTool(
  choice: LocalChatModelCallOptions["tool_choice"],
  tools: ToolSpec[],
): (ToolSpec & { byName: boolean }) | undefined {
  let name: string | undefined;
  if (typeof choice === "string") {
    if (choice === "required" || choice === "any") {
      const first = tools[0];
      return first && { ...first, byName: false };
    }
    if (choice !== "auto" && choice !== "none") name = choice;
  } else if (isRecord(choice)) {
    const fn: unknown = choice.function;
    name = isRecord(fn) && typeof fn.name === "string" ? fn.name : undefined;
    name ??= typeof choice.name === "string" ? choice.name : undefined;
  }
  const tool = tools.find((t) => t.name === name);
  return tool && { ...tool, byName: true };
}

/**
 * Reads a tool in any shape ChatOpenAI accepts: OpenAI `{type: "function", function}`, a bare
 * or Responses-style `{name, parameters}`, `{name, input_schema}`, or a LangChain tool (zod or
 * JSON schema, converted with `convertToOpenAITool`). Built-in provider tools are skipped.
 */
function toToolSpec(tool: unknown): ToolSpec | undefined {
  if (isLangChainTool(tool)) {
    const converted: unknown = convertToOpenAITool(tool);
    return isRecord(converted) ? fromFunction(converted.function) : undefined;
  }
  if (!isRecord(tool)) return undefined;
  if (tool.type === "function" && isRecord(tool.function)) return fromFunction(tool.function);
  if (tool.type === undefined || tool.type === "function") return fromFunction(tool);
  return undefined;
}

function fromFunction(fn: unknown): ToolSpec | undefined {
  if (!isRecord(fn) || typeof fn.name !== "string") return undefined;
  const params = fn.parameters ?? fn.input_schema;
  return {
    name: fn.name,
    ...(typeof fn.description === "string" ? { description: fn.description } : {}),
    ...(isRecord(params) ? { parameters: jsonSchemaOf(params) } : {}),
  };
}

function jsonSchemaOf(schema: unknown): Record<string, unknown> {
  // ChatOpenAI also accepts a zod object here; the filler needs plain JSON Schema.
  const plain: unknown = isInteropZodSchema(schema) ? toJsonSchema(schema) : schema;
  return isRecord(plain) ? plain : {};
}

/** The analysed text: the first human message (retries append messages after it). */
function inputText(messages: BaseMessage[]): string {
  const first = messages.find((m) => m.type === "human");
  return (first ?? messages.at(-1))?.text ?? "";
}

function lastText(messages: BaseMessage[], type: string): string {
  const found = messages.findLast((m) => m.type === type);
  return found?.text ?? "";
}

function messageTokens(m: BaseMessage): number {
  const calls = AIMessage.isInstance(m) ? (m.tool_calls ?? []) : [];
  return countWords(m.text) + calls.reduce((n, c) => n + countWords(JSON.stringify(c.args)), 0);
}
