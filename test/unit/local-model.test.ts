import { describe, it } from "vitest";
import { AIMessage, HumanMessage, SystemMessage, ToolMessage } from "@langchain/core/messages";
import { LocalChatModel } from "../../services/llm/local-model.js";
import { analyzeSentiment } from "../../services/llm/local/sentiment.js";
import { TextAnalysis, fillSchema } from "../../services/llm/local/analyses.js";

describe("explore", () => {
  it("runs", async () => {
    for (const t of ["I absolutely love this product. It is fantastic and works perfectly.", "This was a terrible experience. The app keeps crashing and support was useless.", "The food was great but the service was awful.", "The meeting is at 3pm in room 4.", "It's not bad at all.", "I don't like it. Not good, not very good.", "It's okay.", "Great camera, amazing battery, love it. The case is slightly scratched, which is a minor issue."])
      console.log(t, "=>", JSON.stringify(analyzeSentiment(t)));
    const a = new TextAnalysis("Short text with one sentence, a clause, and another clause here.");
    console.log(a.keyPoints(), a.summary());
    const b = new TextAnalysis("Hi.");
    console.log(b.keyPoints(), b.summary(), new TextAnalysis("").keyPoints(), new TextAnalysis("").summary());
    const schema = { type: "object", properties: { title: { type: "string", maxLength: 30 }, tags: { type: "array", items: { type: "string" }, minItems: 2, maxItems: 4 }, people: { type: "array", items: { $ref: "#/$defs/person" } }, rating: { type: "integer", minimum: 1, maximum: 5 }, urgent: { type: "boolean" }, note: { anyOf: [{ type: "string" }, { type: "null" }] }, kind: { type: "string", enum: ["bug", "feature"] }, tone: { enum: ["positive", "negative", "neutral"] }, word_count: { type: "number" }, overview: { type: "string", minLength: 10 } }, required: ["title"], $defs: { person: { type: "object", properties: { name: { type: "string" }, age: { type: ["integer", "null"], exclusiveMinimum: 0 } } } } };
    console.log(JSON.stringify(fillSchema(schema, new TextAnalysis("Alice reported a crash in the exporter. Bob thinks the fix is simple. The release is blocked until Friday. Everyone is frustrated."))));
    const m = new LocalChatModel().bindTools([{ type: "function", function: { name: "calculator", parameters: { type: "object", properties: { expression: { type: "string" } } } } }, { type: "function", function: { name: "read_file", parameters: { type: "object", properties: { path: { type: "string" } } } } }]);
    const final = await m.invoke([new HumanMessage("what is 17*23 and 1/0, and summarize notes.txt, and the time?"), new AIMessage({ content: "", tool_calls: [{ id: "call_1_1", name: "calculator", args: { expression: "17*23" } }, { id: "call_1_2", name: "calculator", args: { expression: "1/0" } }, { id: "call_1_3", name: "read_file", args: { path: "notes.txt" } }] }), new ToolMessage({ content: "Error: division by zero", tool_call_id: "call_1_2", name: "calculator", status: "error" }), new ToolMessage({ content: "391", tool_call_id: "call_1_1", name: "calculator" }), new ToolMessage({ content: "Pagent runs jobs durably. It uses Restate. Jobs survive crashes. The CLI is small.", tool_call_id: "call_1_3", name: "read_file" })]);
    console.log(final.content);
    console.log((await new LocalChatModel().invoke([new SystemMessage("be nice"), new HumanMessage("Tell me about durable execution. It keeps state. It retries.")])).content);
  });
});
