import { describe, expect, it } from "vitest";
import { z } from "zod";
import { ChatOpenAI } from "@langchain/openai";
import {
  HumanMessage,
  SystemMessage,
  ToolMessage,
  type AIMessageChunk,
} from "@langchain/core/messages";
import { exampleFromJsonSchema, startFakeOpenAI, type FakeOpenAI } from "../helpers/fake-openai.js";

const modelFor = (fake: FakeOpenAI) =>
  new ChatOpenAI({
    model: "fake-model",
    apiKey: "sk-test",
    maxRetries: 0,
    configuration: { baseURL: fake.baseUrl },
  });

async function waitFor(cond: () => boolean, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error("waitFor: timed out");
    await new Promise((r) => setTimeout(r, 5));
  }
}

describe("fake OpenAI server driven by the real ChatOpenAI client", () => {
  it("answers plain text with usage that shows up as usage_metadata (non-streaming invoke)", async () => {
    await using fake = await startFakeOpenAI({
      respond: (req) => ({
        content: `echo: ${req.lastUser} / ${req.system}`,
        usage: { prompt_tokens: 11, completion_tokens: 7 },
      }),
    });
    const msg = await modelFor(fake).invoke([
      new SystemMessage("be brief"),
      new HumanMessage("hello"),
    ]);

    expect(msg.content).toBe("echo: hello / be brief");
    expect(msg.usage_metadata).toMatchObject({
      input_tokens: 11,
      output_tokens: 7,
      total_tokens: 18,
    });
    expect(fake.count()).toBe(1);
    const [entry] = fake.requests;
    expect(entry).toMatchObject({ index: 0, status: 200, aborted: false, replyKind: "content" });
    expect(entry?.headers.authorization).toBe("Bearer sk-test");
    expect((entry?.body as { stream?: boolean }).stream).toBe(false);
    expect(entry?.endedAt).toBeGreaterThanOrEqual(entry?.startedAt ?? Infinity);
  });

  it("computes default usage from character counts", async () => {
    await using fake = await startFakeOpenAI();
    // 12 characters of prompt -> 3 tokens; "ok" -> 1 token (minimum).
    const msg = await modelFor(fake).invoke([new HumanMessage("abcdefghijkl")]);
    expect(msg.content).toBe("ok");
    expect(msg.usage_metadata).toMatchObject({
      input_tokens: 3,
      output_tokens: 1,
      total_tokens: 4,
    });
  });

  it("delivers tool calls with parsed args, and sees tool results on the next turn", async () => {
    await using fake = await startFakeOpenAI({
      respond: (req) =>
        req.toolResults.length === 0
          ? { toolCalls: [{ name: "get_weather", arguments: { city: "Paris", days: 2 } }] }
          : { content: `done: ${req.toolResults.map((t) => t.content).join(",")}` },
    });
    const weather = {
      name: "get_weather",
      description: "Weather forecast for a city",
      schema: z.object({ city: z.string(), days: z.number().int() }),
    };
    const model = modelFor(fake).bindTools([weather]);
    const question = new HumanMessage("weather in Paris?");

    const first = await model.invoke([question]);
    expect(first.tool_calls).toEqual([
      expect.objectContaining({
        name: "get_weather",
        args: { city: "Paris", days: 2 },
        id: "call_1",
      }),
    ]);
    const offered = (fake.requests[0]?.body as { tools: { function: { name: string } }[] }).tools;
    expect(offered.map((t) => t.function.name)).toEqual(["get_weather"]);

    // The responder can be swapped at runtime; capture what the fake parsed out of turn two.
    let seen: unknown;
    fake.setResponder((req) => {
      seen = req.toolResults;
      return { content: "done: sunny" };
    });
    const second = await model.invoke([
      question,
      first,
      new ToolMessage({ tool_call_id: "call_1", content: "sunny" }),
    ]);
    expect(second.content).toBe("done: sunny");
    expect(seen).toEqual([{ tool_call_id: "call_1", content: "sunny" }]);
    expect(fake.requests.map((r) => r.replyKind)).toEqual(["toolCalls", "content"]);
  });

  it("default responder returns schema-valid JSON for response_format json_schema", async () => {
    await using fake = await startFakeOpenAI();
    const Verdict = z.object({
      verdict: z.enum(["pass", "fail"]),
      score: z.number().min(1).max(10),
      count: z.number().int().min(3),
      tags: z.array(z.string()).min(2),
      detail: z.object({ reason: z.string().min(12), flag: z.boolean() }),
      note: z.union([z.string(), z.null()]),
    });
    // @langchain/openai 1.5 call option: `response_format` = OpenAI's ResponseFormatJSONSchema,
    // except json_schema.schema may be a plain JSON Schema object OR a zod object.
    const msg = await modelFor(fake).invoke([new HumanMessage("judge this")], {
      response_format: {
        type: "json_schema",
        json_schema: { name: "verdict", schema: z.toJSONSchema(Verdict), strict: true },
      },
    });

    expect(typeof msg.content).toBe("string");
    const parsed = Verdict.parse(JSON.parse(msg.content as string));
    expect(parsed).toEqual({
      verdict: "pass",
      score: 1,
      count: 3,
      tags: ["example", "example"],
      detail: { reason: "examplexxxxx", flag: false },
      note: "example",
    });
    expect(fake.requests[0]?.replyKind).toBe("json");
  });

  it("exampleFromJsonSchema handles $ref, anyOf, exclusive bounds and const", () => {
    const schema = {
      type: "object",
      required: ["a", "b", "c", "d"],
      properties: {
        a: { $ref: "#/$defs/Pos" },
        b: { anyOf: [{ type: "integer", exclusiveMinimum: 5 }, { type: "string" }] },
        c: { const: "fixed" },
        d: { type: ["null", "boolean"] },
        optional: { type: "string" },
      },
      $defs: { Pos: { type: "number", minimum: -10, maximum: -2 } },
    };
    expect(exampleFromJsonSchema(schema)).toEqual({ a: -10, b: 6, c: "fixed", d: false });
  });

  it("streams content deltas and usage (stream_options.include_usage)", async () => {
    await using fake = await startFakeOpenAI({
      respond: () => ({ content: "Hello streaming world" }),
    });
    const model = new ChatOpenAI({
      model: "fake-model",
      apiKey: "sk-test",
      maxRetries: 0,
      streamUsage: true,
      configuration: { baseURL: fake.baseUrl },
    });
    const chunks: AIMessageChunk[] = [];
    for await (const chunk of await model.stream([new HumanMessage("say hello")]))
      chunks.push(chunk);

    expect(
      chunks.filter((c) => typeof c.content === "string" && c.content.length > 0).length,
    ).toBeGreaterThan(1);
    const full = chunks.reduce((acc, c) => acc.concat(c));
    expect(full.content).toBe("Hello streaming world");
    // "say hello" = 9 chars -> 3 tokens; 21 chars -> 6 tokens.
    expect(full.usage_metadata).toMatchObject({
      input_tokens: 3,
      output_tokens: 6,
      total_tokens: 9,
    });
    expect(fake.requests[0]?.body).toMatchObject({
      stream: true,
      stream_options: { include_usage: true },
    });
  });

  it("streams tool call deltas", async () => {
    await using fake = await startFakeOpenAI({
      respond: () => ({
        toolCalls: [
          { name: "lookup", arguments: { q: "a fairly long query string" }, id: "call_x" },
        ],
      }),
    });
    const model = modelFor(fake).bindTools([
      { name: "lookup", description: "Look up", schema: z.object({ q: z.string() }) },
    ]);
    let full: AIMessageChunk | undefined;
    for await (const chunk of await model.stream([new HumanMessage("look it up")]))
      full = full ? full.concat(chunk) : chunk;
    expect(full?.tool_calls).toEqual([
      expect.objectContaining({
        name: "lookup",
        id: "call_x",
        args: { q: "a fairly long query string" },
      }),
    ]);
    expect(full?.response_metadata.finish_reason).toBe("tool_calls");
  });

  it("surfaces an injected 429 with Retry-After as an error carrying status and headers", async () => {
    await using fake = await startFakeOpenAI({
      respond: (req) =>
        req.index === 0 ? { status: 429, headers: { "Retry-After": "1" } } : { content: "ok" },
    });
    const err: unknown = await modelFor(fake)
      .invoke([new HumanMessage("hi")])
      .then(
        () => undefined,
        (e: unknown) => e,
      );

    // What LangChain (@langchain/openai 1.5.8 + @langchain/core 1.4 + openai 6.49) throws: the
    // openai SDK's own error, NOT wrapped. `err.constructor.name === "RateLimitError"` (subclass
    // of openai's APIError), with:
    //   err.status: number (429)            err.headers: web `Headers` -> err.headers.get("retry-after")
    //   err.error: the body's `error` object  err.code / err.type / err.param: copied from it
    //   err.requestID: x-request-id header or null
    //   err.lc_error_code: "MODEL_RATE_LIMIT" (401 -> MODEL_AUTHENTICATION, 404 -> MODEL_NOT_FOUND)
    //   err.message: "429 <error.message>\n\nTroubleshooting URL: ..."
    // and @langchain/core's AsyncCaller adds rate-limit hints:
    //   err.rateLimitType: "wait", err.rateLimitReason: "retry_after_hint", err.retryAfterMs: 1000
    // 5xx arrive as InternalServerError with the same status/headers fields (no lc_error_code).
    expect(err).toBeInstanceOf(Error);
    const e = err as Error & Record<string, unknown>;
    expect(e.constructor.name).toBe("RateLimitError");
    expect(e.status).toBe(429);
    expect(e.headers).toBeInstanceOf(Headers);
    expect((e.headers as Headers).get("retry-after")).toBe("1");
    expect(e.lc_error_code).toBe("MODEL_RATE_LIMIT");
    expect(e.code).toBe("rate_limit_exceeded");
    expect(e.retryAfterMs).toBe(1000);
    expect(e.message).toMatch(/^429 /);
    expect(fake.requests[0]).toMatchObject({ status: 429, replyKind: "status", aborted: false });

    // maxRetries: 0 means nothing retried; the next call succeeds.
    expect(fake.count()).toBe(1);
    expect((await modelFor(fake).invoke("again")).content).toBe("ok");
  });

  it("surfaces 503 with its status", async () => {
    await using fake = await startFakeOpenAI({ respond: () => ({ status: 503 }) });
    const err = (await modelFor(fake)
      .invoke("hi")
      .catch((e: unknown) => e)) as Error & { status?: number };
    expect(err.constructor.name).toBe("InternalServerError");
    expect(err.status).toBe(503);
  });

  it("applies latency so concurrent requests overlap", async () => {
    await using fake = await startFakeOpenAI({ latencyMs: 300 });
    const model = modelFor(fake);
    const t0 = Date.now();
    const answers = await Promise.all([1, 2, 3].map((i) => model.invoke(`request ${i}`)));
    const wall = Date.now() - t0;

    expect(answers.map((a) => a.content)).toEqual(["ok", "ok", "ok"]);
    expect(fake.maxInFlight).toBe(3);
    expect(fake.inFlight()).toBe(0);
    const starts = fake.requests.map((r) => r.startedAt);
    const ends = fake.requests.map((r) => r.endedAt ?? NaN);
    expect(Math.max(...starts)).toBeLessThan(Math.min(...ends)); // all three were open at once
    for (const r of fake.requests)
      expect((r.endedAt ?? 0) - r.startedAt).toBeGreaterThanOrEqual(290);
    expect(wall).toBeLessThan(900); // overlapped, not 3 x 300 ms in series

    fake.reset();
    expect(fake.count()).toBe(0);
    expect(fake.maxInFlight).toBe(0);
  });

  it("marks a hung request aborted by the client's AbortSignal, and still closes promptly", async () => {
    const fake = await startFakeOpenAI({ respond: () => ({ hang: true }) });
    try {
      const model = modelFor(fake);
      const ac = new AbortController();
      const pending = model.invoke([new HumanMessage("never answered")], { signal: ac.signal });
      await waitFor(() => fake.inFlight() === 1);
      ac.abort();
      await expect(pending).rejects.toThrow();
      await waitFor(() => fake.requests[0]?.aborted === true);
      expect(fake.requests[0]).toMatchObject({
        endedAt: undefined,
        status: undefined,
        replyKind: "hang",
      });
      expect(fake.inFlight()).toBe(0);

      // A second hung request is still open when the server closes: close() must not wait for it.
      const orphan = model.invoke("also hangs").catch((e: unknown) => e);
      await waitFor(() => fake.inFlight() === 1);
      const t0 = Date.now();
      await fake.close();
      expect(Date.now() - t0).toBeLessThan(1_000);
      expect(await orphan).toBeInstanceOf(Error);
      expect(fake.requests[1]?.aborted).toBe(true);
    } finally {
      await fake.close(); // idempotent
    }
  });

  it("answers Azure OpenAI's deployment URL too and logs the path, query and api-key", async () => {
    await using fake = await startFakeOpenAI();
    const res = await fetch(
      `http://127.0.0.1:${fake.port}/openai/deployments/prod/chat/completions?api-version=2024-10-21`,
      {
        method: "POST",
        headers: { "api-key": "az-key", "content-type": "application/json" },
        body: JSON.stringify({ model: "gpt-4o", messages: [{ role: "user", content: "hi" }] }),
      },
    );
    expect(res.status).toBe(200);
    expect(fake.requests[0]).toMatchObject({
      url: "/openai/deployments/prod/chat/completions?api-version=2024-10-21",
      headers: { "api-key": "az-key" },
    });
    const other = await fetch(`http://127.0.0.1:${fake.port}/openai/deployments/prod/embeddings`, {
      method: "POST",
      body: "{}",
    });
    expect(other.status).toBe(404);
  });

  it("serves /v1/models, 404s unknown routes and 400s non-JSON bodies in OpenAI error shape", async () => {
    await using fake = await startFakeOpenAI();
    const models = (await (await fetch(`${fake.baseUrl}/models`)).json()) as {
      data: { id: string }[];
    };
    expect(models.data.map((m) => m.id)).toEqual(["fake-model"]);

    const missing = await fetch(`${fake.baseUrl}/embeddings`, { method: "POST", body: "{}" });
    expect(missing.status).toBe(404);
    expect(await missing.json()).toMatchObject({
      error: { type: "invalid_request_error", code: "not_found" },
    });

    const bad = await fetch(`${fake.baseUrl}/chat/completions`, {
      method: "POST",
      body: "not json",
    });
    expect(bad.status).toBe(400);
    const badBody = (await bad.json()) as {
      error: { message: unknown; type: string; code: unknown };
    };
    expect(badBody.error.type).toBe("invalid_request_error");
    expect(typeof badBody.error.message).toBe("string");
    expect(badBody.error).toHaveProperty("code");
    expect(fake.requests).toEqual([
      expect.objectContaining({ index: 0, status: 400, replyKind: "invalid" }),
    ]);
  });
});
