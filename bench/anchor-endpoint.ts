/**
 * The bench's anchors: what Restate itself does on this machine, without pagent. A plain endpoint
 * of the Restate SDK, registered on the bench's restate-server beside pagent's, hosting:
 * - AnchorNoop.noop: an invocation that does nothing (invocations per second through the ingress);
 * - AnchorInput.run: the invocation shape of one pagent batch input (one orchestrating
 *   virtual-object invocation calling three child invocations, AnchorTask.analysis, each doing one
 *   `ctx.run` that calls the LLM provider);
 * - AnchorSeed.run: the seed's shape, three `ctx.run` calling the provider in one invocation;
 * - AnchorAsk.run: the invocation shape of a pagent ask job with one round of tool calls (one
 *   orchestrating virtual-object invocation calling an LLM invocation, one invocation per tool call
 *   the model asked for (an HTTP GET in a `ctx.run`), then the LLM invocation again);
 * - AnchorFanOut.run: n trivial `ctx.run`s in one invocation, in groups of 100 as pagent's agent
 *   turn runs its tool calls (the floor of scenario 3's durable overhead per task).
 * The provider call is a plain fetch of the same chat-completions request pagent sends (system
 * instruction, the text, the analysis's JSON schema), so the fake answers both alike.
 *
 * Run as `node dist/bench/anchor-endpoint.js <port>`: it prints "listening" once it serves.
 */
import "../src/polyfill.js";
import { fileURLToPath } from "node:url";
import * as restate from "@restatedev/restate-sdk";

export interface AnchorAnalysis {
  name: string;
  instruction: string;
  schema: unknown;
}

export interface AnchorRequest {
  baseUrl: string;
  text: string;
  analyses: AnchorAnalysis[];
}

type ChatMessage = Record<string, unknown>;
interface ToolCall {
  id: string;
  function: { name: string; arguments: string };
}

/** One chat-completions request to the provider: the answer's message. */
async function chat(baseUrl: string, body: Record<string, unknown>): Promise<ChatMessage> {
  const res = await fetch(`${baseUrl}/chat/completions`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: "Bearer sk-bench" },
    body: JSON.stringify({ model: "bench", ...body }),
  });
  if (!res.ok) throw new Error(`provider answered ${res.status}`);
  const answer = (await res.json()) as { choices: { message: ChatMessage }[] };
  return answer.choices[0]!.message;
}

/** An analysis as pagent asks for it: instruction, text, the answer's JSON schema. */
async function callProvider(baseUrl: string, text: string, analysis: AnchorAnalysis) {
  const message = await chat(baseUrl, {
    messages: [
      { role: "system", content: analysis.instruction },
      { role: "user", content: text },
    ],
    response_format: {
      type: "json_schema",
      json_schema: { name: analysis.name, schema: analysis.schema },
    },
  });
  return JSON.parse(message.content as string) as unknown;
}

export const anchorLlm = restate.service({
  name: "AnchorLlm",
  handlers: {
    turn: async (
      ctx: restate.Context,
      req: { baseUrl: string; messages: ChatMessage[] },
    ): Promise<ChatMessage> => ctx.run("llm", () => chat(req.baseUrl, { messages: req.messages })),
  },
});

export const anchorTool = restate.service({
  name: "AnchorTool",
  handlers: {
    get: async (ctx: restate.Context, url: string): Promise<string> =>
      ctx.run("get", async () => (await fetch(url)).text()),
  },
});

export const anchorAsk = restate.object({
  name: "AnchorAsk",
  handlers: {
    run: async (
      ctx: restate.ObjectContext,
      req: { baseUrl: string; prompt: string },
    ): Promise<unknown> => {
      const llm = ctx.serviceClient<typeof anchorLlm>({ name: "AnchorLlm" });
      const tool = ctx.serviceClient<typeof anchorTool>({ name: "AnchorTool" });
      const messages: ChatMessage[] = [{ role: "user", content: req.prompt }];
      const first = await llm.turn({ baseUrl: req.baseUrl, messages });
      const calls = (first.tool_calls ?? []) as ToolCall[];
      const results = await restate.RestatePromise.all(
        calls.map((c) => tool.get((JSON.parse(c.function.arguments) as { url: string }).url)),
      );
      const second = await llm.turn({
        baseUrl: req.baseUrl,
        messages: [
          ...messages,
          first,
          ...calls.map((c, i) => ({ role: "tool", tool_call_id: c.id, content: results[i] })),
        ],
      });
      return second.content;
    },
  },
});

export const anchorNoop = restate.service({
  name: "AnchorNoop",
  handlers: { noop: (_ctx: restate.Context): Promise<null> => Promise.resolve(null) },
});

export const anchorTask = restate.service({
  name: "AnchorTask",
  handlers: {
    analysis: async (
      ctx: restate.Context,
      req: { baseUrl: string; text: string; analysis: AnchorAnalysis },
    ): Promise<unknown> =>
      ctx.run(`llm ${req.analysis.name}`, () => callProvider(req.baseUrl, req.text, req.analysis)),
  },
});

export const anchorInput = restate.object({
  name: "AnchorInput",
  handlers: {
    run: async (ctx: restate.ObjectContext, req: AnchorRequest): Promise<unknown[]> =>
      restate.RestatePromise.all(
        req.analyses.map((analysis) =>
          ctx
            .serviceClient<typeof anchorTask>({ name: "AnchorTask" })
            .analysis({ baseUrl: req.baseUrl, text: req.text, analysis }),
        ),
      ),
  },
});

export const anchorSeed = restate.object({
  name: "AnchorSeed",
  handlers: {
    run: async (ctx: restate.ObjectContext, req: AnchorRequest): Promise<unknown[]> =>
      restate.RestatePromise.all(
        req.analyses.map((analysis) =>
          ctx.run(`llm ${analysis.name}`, () => callProvider(req.baseUrl, req.text, analysis)),
        ),
      ),
  },
});

export const anchorFanOut = restate.service({
  name: "AnchorFanOut",
  handlers: {
    run: async (ctx: restate.Context, req: { n: number; group: number }): Promise<number> => {
      let words = 0;
      for (let from = 0; from < req.n; from += req.group) {
        const counts = await restate.RestatePromise.all(
          Array.from({ length: Math.min(req.group, req.n - from) }, (_, i) =>
            ctx.run(`count ${from + i}`, () => `word ${from + i}`.split(" ").length),
          ),
        );
        words += counts.reduce((a, b) => a + b, 0);
      }
      return words;
    },
  },
});

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  await restate
    .endpoint()
    .bind(anchorNoop)
    .bind(anchorTask)
    .bind(anchorInput)
    .bind(anchorSeed)
    .bind(anchorFanOut)
    .bind(anchorLlm)
    .bind(anchorTool)
    .bind(anchorAsk)
    .listen(Number(process.argv[2]));
  console.log("listening");
}
