import {
  AIMessage,
  HumanMessage,
  SystemMessage,
  ToolMessage,
  mapChatMessagesToStoredMessages,
  mapStoredMessagesToChatMessages,
  type BaseMessage,
} from "@langchain/core/messages";
import { tool } from "@langchain/core/tools";
import { describe, expect, it } from "vitest";
import { z } from "zod";

import {
  BUILTIN_ANALYSES,
  FREE_TEXT_SCHEMA,
  schemaName,
  validateAnswer,
} from "../../services/analyses.js";
import { MAX_POINT_CHARS } from "../../services/llm/local/analyses.js";
import { LocalChatModel } from "../../services/llm/local-model.js";

// The schemas the analyses send, as the caller builds them (JSON Schema from zod).
const sentimentSchema = z.object({
  label: z.enum(["positive", "negative", "neutral", "mixed"]),
  score: z.number().min(-1).max(1),
  reason: z.string(),
});
const keyPointsSchema = z.object({ points: z.array(z.string()).min(3).max(5) });
const summarySchema = z.object({ summary: z.string().min(1) });

const REVIEW_POSITIVE =
  "I absolutely love this laptop. The screen is stunning and the keyboard is excellent. " +
  "Battery life is fantastic and setup was easy.";
const REVIEW_NEGATIVE =
  "This was a terrible purchase. The app keeps crashing and support was useless. " +
  "I am disappointed and frustrated.";
const REVIEW_MIXED =
  "The camera is amazing and the photos look wonderful. " +
  "Unfortunately the battery is awful and the charger broke after a week.";

const ARTICLE = `Durable execution lets a program survive crashes by recording each step.
When a process dies, the runtime replays the recorded steps and continues where it stopped.

Restate is a durable execution engine that stores the journal of every invocation.
pagent uses Restate so that long LLM jobs are not lost when a laptop sleeps or a CI runner restarts.
Each analysis of a text is one durable step, and its result is stored in the journal.
The command line client only submits jobs and prints results.
Because results are journaled, asking for the same job twice returns the stored result instead of paying again.
The design keeps the agent loop simple: call the model, run the tools, store the messages.`;

function analysisMessages(text: string): BaseMessage[] {
  return [new SystemMessage("Analyse the text and answer with JSON."), new HumanMessage(text)];
}

function format(name: string, schema: Record<string, unknown>) {
  return {
    response_format: {
      type: "json_schema" as const,
      json_schema: { name, schema, strict: true },
    },
  };
}

async function analyse(name: string, schema: z.ZodType, text: string): Promise<unknown> {
  const model = new LocalChatModel();
  const ai = await model.invoke(analysisMessages(text), format(name, z.toJSONSchema(schema)));
  expect(typeof ai.content).toBe("string");
  return schema.parse(JSON.parse(ai.content as string));
}

const collapse = (s: string) => s.replace(/\s+/g, " ").trim();

const openAiTools = [
  {
    type: "function" as const,
    function: {
      name: "calculator",
      description: "Evaluate an arithmetic expression",
      parameters: {
        type: "object",
        properties: { expression: { type: "string" } },
        required: ["expression"],
      },
    },
  },
  {
    type: "function" as const,
    function: {
      name: "clock",
      description: "Current time in a time zone",
      parameters: {
        type: "object",
        properties: { timezone: { type: "string" } },
        required: ["timezone"],
      },
    },
  },
];

const AGENT_PROMPT = "what is 17*23 and what time is it in UTC";

describe("LocalChatModel analyses", () => {
  it("labels clearly positive, negative and mixed texts", async () => {
    const positive = sentimentSchema.parse(
      await analyse("sentiment", sentimentSchema, REVIEW_POSITIVE),
    );
    expect(positive.label).toBe("positive");
    expect(positive.score).toBeGreaterThan(0.5);
    expect(positive.reason).not.toContain("\n");
    expect(positive.reason).toContain("love");

    const negative = sentimentSchema.parse(
      await analyse("sentiment", sentimentSchema, REVIEW_NEGATIVE),
    );
    expect(negative.label).toBe("negative");
    expect(negative.score).toBeLessThan(-0.5);
    expect(negative.reason).toContain("terrible");

    const mixed = sentimentSchema.parse(await analyse("sentiment", sentimentSchema, REVIEW_MIXED));
    expect(mixed.label).toBe("mixed");
    expect(mixed.reason).toContain("amazing");
    expect(mixed.reason).toContain("awful");
  });

  it("handles negation and neutral text", async () => {
    const notGood = sentimentSchema.parse(
      await analyse("sentiment", sentimentSchema, "The update is not good."),
    );
    expect(notGood.score).toBeLessThan(0);
    expect(notGood.reason).toContain('"not good"');
    const neutral = sentimentSchema.parse(
      await analyse("sentiment", sentimentSchema, "The meeting is on Tuesday in room four."),
    );
    expect(neutral).toMatchObject({ label: "neutral", score: 0 });
  });

  it("extracts 3–5 key points that are sentences of the text, in order", async () => {
    const { points } = keyPointsSchema.parse(await analyse("key_points", keyPointsSchema, ARTICLE));
    expect(points.length).toBeGreaterThanOrEqual(3);
    expect(points.length).toBeLessThanOrEqual(5);
    const text = collapse(ARTICLE);
    let last = -1;
    for (const point of points) {
      expect(point.length).toBeLessThanOrEqual(MAX_POINT_CHARS);
      const at = text.indexOf(point.replace(/…$/, ""));
      expect(at).toBeGreaterThan(last);
      last = at;
    }
  });

  it("splits a short text into clauses to reach three points", async () => {
    const { points } = keyPointsSchema.parse(
      await analyse(
        "key_points",
        keyPointsSchema,
        "Restate stores journals, pagent submits jobs, and the CLI prints results.",
      ),
    );
    expect(points).toHaveLength(3);
  });

  it("summarises with the best sentences of the text", async () => {
    const { summary } = summarySchema.parse(await analyse("summary", summarySchema, ARTICLE));
    expect(summary.length).toBeGreaterThan(20);
    const text = collapse(ARTICLE);
    for (const sentence of summary.split(/(?<=\.) /)) expect(text).toContain(sentence);
  });

  it("fills any custom schema with a value that validates", async () => {
    const custom = {
      type: "object",
      properties: {
        title: { type: "string", maxLength: 40 },
        topics: { type: "array", items: { type: "string" }, minItems: 2, maxItems: 4 },
        claims: {
          type: "array",
          items: { $ref: "#/$defs/claim" },
          minItems: 1,
        },
        sentence_count: { type: "integer", minimum: 0 },
        confidence: { type: "number", minimum: 0, maximum: 1 },
        urgent: { type: "boolean" },
        category: { type: "string", enum: ["tech", "finance", "other"] },
        note: { anyOf: [{ type: "string" }, { type: "null" }] },
      },
      required: [
        "title",
        "topics",
        "claims",
        "sentence_count",
        "confidence",
        "urgent",
        "category",
        "note",
      ],
      additionalProperties: false,
      $defs: {
        claim: {
          type: "object",
          properties: {
            text: { type: "string", minLength: 5 },
            importance: { type: "integer", minimum: 1, maximum: 5 },
          },
          required: ["text", "importance"],
          additionalProperties: false,
        },
      },
    };
    const model = new LocalChatModel();
    const ai = await model.invoke(analysisMessages(ARTICLE), format("claims_review", custom));
    const value: unknown = JSON.parse(ai.content as string);
    const validator = z.fromJSONSchema(custom as Parameters<typeof z.fromJSONSchema>[0]);
    expect(() => validator.parse(value)).not.toThrow();
    expect(() => validator.parse({ title: 1 })).toThrow(); // the check is not vacuous
    expect(value).toMatchObject({ sentence_count: 8, category: "tech", urgent: false });
  });

  it("passes the caller's own validation for every built-in analysis and free text", async () => {
    const model = new LocalChatModel();
    const specs = [
      ...BUILTIN_ANALYSES,
      { name: "names", instruction: "List the people named.", schema: FREE_TEXT_SCHEMA },
    ];
    for (const spec of specs) {
      for (const text of [ARTICLE, REVIEW_MIXED, "Hi", ""]) {
        const ai = await model.invoke(
          [new SystemMessage(spec.instruction), new HumanMessage(text)],
          format(schemaName(spec.name), spec.schema),
        );
        expect(validateAnswer(spec, ai.content as string)).toMatchObject({ ok: true });
      }
    }
  });

  it("accepts a zod schema in response_format, as ChatOpenAI does", async () => {
    const model = new LocalChatModel();
    const ai = await model.invoke(analysisMessages(REVIEW_POSITIVE), {
      response_format: {
        type: "json_schema",
        json_schema: { name: "sentiment", schema: sentimentSchema },
      },
    });
    expect(sentimentSchema.parse(JSON.parse(ai.content as string)).label).toBe("positive");
  });

  it("is deterministic and answers a validation retry with the same valid value", async () => {
    const model = new LocalChatModel();
    const opts = format("key_points", z.toJSONSchema(keyPointsSchema));
    const first = await model.invoke(analysisMessages(ARTICLE), opts);
    const second = await model.invoke(analysisMessages(ARTICLE), opts);
    expect(second.content).toBe(first.content);
    expect(second.usage_metadata).toEqual(first.usage_metadata);

    const retry = await model.invoke(
      [
        ...analysisMessages(ARTICLE),
        new AIMessage('{"points": []}'),
        new HumanMessage(
          "That answer was invalid: points: too small. Answer again with JSON that matches the schema.",
        ),
      ],
      opts,
    );
    expect(retry.content).toBe(first.content);
  });

  it("reports usage in words and the model name", async () => {
    const model = new LocalChatModel();
    const ai = await model.invoke(
      analysisMessages("one two three"),
      format("summary", {
        type: "object",
        properties: { summary: { type: "string" } },
        required: ["summary"],
      }),
    );
    // "Analyse the text and answer with JSON." (7) + "one two three" (3)
    expect(ai.usage_metadata).toEqual({ input_tokens: 10, output_tokens: 3, total_tokens: 13 });
    expect(ai.response_metadata.model_name).toBe("local");
  });

  it("echoes a short extractive summary without tools or response_format", async () => {
    const ai = await new LocalChatModel().invoke([new HumanMessage(ARTICLE)]);
    expect(typeof ai.content).toBe("string");
    expect(collapse(ARTICLE)).toContain((ai.content as string).split(". ")[0]);
    expect(ai.tool_calls ?? []).toEqual([]);
  });
});

describe("LocalChatModel agent", () => {
  it("plans several tool calls in one turn, in prompt order, with deterministic ids", async () => {
    const model = new LocalChatModel().bindTools(openAiTools);
    const ai = await model.invoke([
      new SystemMessage("You are helpful."),
      new HumanMessage(AGENT_PROMPT),
    ]);
    expect(ai.content).toBe("");
    expect(ai.tool_calls).toEqual([
      { id: "call_1_1", name: "calculator", args: { expression: "17*23" }, type: "tool_call" },
      { id: "call_1_2", name: "clock", args: { timezone: "UTC" }, type: "tool_call" },
    ]);
    expect(ai.usage_metadata?.input_tokens).toBe(3 + 10);
    expect(ai.usage_metadata?.output_tokens).toBeGreaterThan(0);
    expect(ai.response_metadata.model_name).toBe("local");

    const again = await model.invoke([
      new SystemMessage("You are helpful."),
      new HumanMessage(AGENT_PROMPT),
    ]);
    expect(again.tool_calls).toEqual(ai.tool_calls);
  });

  it("answers from tool results, one sentence per call, in call order", async () => {
    const model = new LocalChatModel().bindTools(openAiTools);
    const history: BaseMessage[] = [new HumanMessage(AGENT_PROMPT)];
    const planned = await model.invoke(history);
    history.push(planned);
    // Results arrive out of order; the answer still follows the calls.
    history.push(
      new ToolMessage({ content: "2026-11-26T12:00:00Z", tool_call_id: "call_1_2", name: "clock" }),
      new ToolMessage({ content: "391", tool_call_id: "call_1_1", name: "calculator" }),
    );
    const final = await model.invoke(history);
    expect(final.tool_calls ?? []).toEqual([]);
    expect(final.content).toBe("17*23 = 391. The time in UTC is 2026-11-26T12:00:00Z.");
  });

  it("works on messages that went through a JSON round trip", async () => {
    const model = new LocalChatModel().bindTools(openAiTools);
    const planned = await model.invoke([new HumanMessage(AGENT_PROMPT)]);
    const history: BaseMessage[] = [
      new HumanMessage(AGENT_PROMPT),
      planned,
      new ToolMessage({ content: "391", tool_call_id: "call_1_1", name: "calculator" }),
      new ToolMessage({ content: "2026-11-26T12:00:00Z", tool_call_id: "call_1_2", name: "clock" }),
    ];
    const stored: unknown = JSON.parse(JSON.stringify(mapChatMessagesToStoredMessages(history)));
    const restored = mapStoredMessagesToChatMessages(stored as never);
    const final = await model.invoke(restored);
    expect(final.content).toContain("391");
    expect(final.content).toContain("2026-11-26T12:00:00Z");

    // The first turn, restored, plans the same calls again.
    const replanned = await model.invoke(restored.slice(0, 1));
    expect(replanned.tool_calls).toEqual(planned.tool_calls);
  });

  it("says when a tool failed", async () => {
    const model = new LocalChatModel().bindTools(openAiTools);
    const final = await model.invoke([
      new HumanMessage("what is 1/0"),
      new AIMessage({
        content: "",
        tool_calls: [{ id: "call_1_1", name: "calculator", args: { expression: "1/0" } }],
      }),
      new ToolMessage({
        content: "Error: division by zero",
        tool_call_id: "call_1_1",
        name: "calculator",
        status: "error",
      }),
    ]);
    expect(final.content).toBe("calculator (1/0) failed: division by zero.");
  });

  it("only calls tools that are bound", async () => {
    const calculatorOnly = new LocalChatModel().bindTools(openAiTools.slice(0, 1));
    const ai = await calculatorOnly.invoke([new HumanMessage(AGENT_PROMPT)]);
    expect(ai.tool_calls?.map((c) => c.name)).toEqual(["calculator"]);

    const clockOnly = new LocalChatModel().bindTools(openAiTools.slice(1));
    const direct = await clockOnly.invoke([new HumanMessage("what is 17*23?")]);
    expect(direct.tool_calls ?? []).toEqual([]);
    expect(direct.content).toContain("not an LLM");
    expect(direct.content).toContain("no calculator tool is bound");
  });

  it("answers directly when no rule matches", async () => {
    const model = new LocalChatModel().bindTools(openAiTools);
    const ai = await model.invoke([new HumanMessage("Write me a poem about the sea.")]);
    expect(ai.tool_calls ?? []).toEqual([]);
    expect(ai.content).toContain("17*23");
  });

  it("accepts LangChain tools and recognises files, URLs, listings and word counts", async () => {
    const noop = () => "";
    const tools = [
      tool(noop, { name: "read_file", schema: z.object({ path: z.string() }) }),
      tool(noop, { name: "list_files", schema: z.object({ path: z.string() }) }),
      tool(noop, { name: "http_get", schema: z.object({ url: z.string() }) }),
      tool(noop, { name: "word_count", schema: z.object({ text: z.string() }) }),
    ];
    const model = new LocalChatModel().bindTools(tools);
    const ai = await model.invoke([
      new HumanMessage("Hi."),
      new AIMessage("Hello."),
      new HumanMessage(
        "Summarize notes/todo.md, list files in src, fetch https://example.com/x. " +
          'Also count the words in "to be or not to be".',
      ),
    ]);
    expect(ai.tool_calls?.map((c) => [c.id, c.name, c.args])).toEqual([
      ["call_2_1", "read_file", { path: "notes/todo.md" }],
      ["call_2_2", "list_files", { path: "src" }],
      ["call_2_3", "http_get", { url: "https://example.com/x" }],
      ["call_2_4", "word_count", { text: "to be or not to be" }],
    ]);
  });

  it("finds several expressions and named time zones", async () => {
    const model = new LocalChatModel().bindTools(openAiTools);
    const ai = await model.invoke([
      new HumanMessage(
        "Compute (2+3)/4 and 12.5 % 3 and 2^8, on 2026-11-26. What time is it in Europe/Paris and Tokyo?",
      ),
    ]);
    expect(ai.tool_calls?.map((c) => c.args)).toEqual([
      { expression: "(2+3)/4" },
      { expression: "12.5 % 3" },
      { expression: "2^8" },
      { timezone: "Europe/Paris" },
      { timezone: "Asia/Tokyo" },
    ]);
  });

  it("honours tool_choice and parallel_tool_calls", async () => {
    const model = new LocalChatModel();
    const messages = [new HumanMessage(AGENT_PROMPT)];
    const none = await model.bindTools(openAiTools, { tool_choice: "none" }).invoke(messages);
    expect(none.tool_calls ?? []).toEqual([]);
    const clock = await model
      .bindTools(openAiTools, { tool_choice: { type: "function", function: { name: "clock" } } })
      .invoke(messages);
    expect(clock.tool_calls?.map((c) => c.name)).toEqual(["clock"]);
    const required = await model
      .bindTools(openAiTools, { tool_choice: "required" })
      .invoke([new HumanMessage("hello")]);
    expect(required.tool_calls?.map((c) => c.name)).toEqual(["calculator"]);
    const single = await model
      .bindTools(openAiTools, { parallel_tool_calls: false })
      .invoke(messages);
    expect(single.tool_calls?.map((c) => c.name)).toEqual(["calculator"]);
  });

  it("handles a long input in reasonable time", async () => {
    const long = Array.from(
      { length: 600 },
      (_, i) => `Sentence ${i} talks about topic ${i % 17} and durable jobs number ${i % 5}.`,
    ).join(" ");
    const started = performance.now();
    await analyse("key_points", keyPointsSchema, long);
    expect(performance.now() - started).toBeLessThan(5000);
  });
});
