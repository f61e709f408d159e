/**
 * A real local HTTP server speaking the OpenAI chat-completions wire protocol, for tests and
 * benchmarks. Point `ChatOpenAI({ configuration: { baseURL: fake.baseUrl } })` at it; every
 * answer is decided by a replaceable responder, and every request is logged with timings.
 *
 * Only `node:http` is used so the fake behaves like a remote server (real sockets, real SSE,
 * real aborts) without any extra dependency.
 */
import http from "node:http";
import type { AddressInfo } from "node:net";
import type { Socket } from "node:net";
import { performance } from "node:perf_hooks";
import { setImmediate as setImmediateP } from "node:timers/promises";

/** OpenAI's chat-completions path, and Azure OpenAI's per-deployment one. */
const CHAT_PATH = /^\/(v1|openai\/deployments\/[^/]+)\/chat\/completions$/;

// ---------------------------------------------------------------------------------------------
// Public types
// ---------------------------------------------------------------------------------------------

/** One chat message as sent by the client (only the fields the fake looks at are typed). */
export interface FakeMessage {
  role: string;
  content?: unknown;
  name?: string;
  tool_call_id?: string;
  tool_calls?: unknown[];
  [key: string]: unknown;
}

/** One tool definition offered by the client (`body.tools[i]`). */
export interface FakeTool {
  type: string;
  function?: { name: string; description?: string; parameters?: unknown; strict?: boolean | null };
  [key: string]: unknown;
}

/** A tool result the client sent back after the last assistant turn. */
export interface FakeToolResult {
  tool_call_id: string;
  content: string;
}

/**
 * What a responder sees about one POST /v1/chat/completions request (or Azure OpenAI's
 * /openai/deployments/{deployment}/chat/completions?api-version=…, answered the same way).
 */
export interface FakeRequest {
  /** 0-based counter over chat-completions requests since start / last `reset()`. */
  index: number;
  /** The parsed JSON body, untouched. */
  body: Record<string, unknown>;
  /** `body.model` (or "" if absent). */
  model: string;
  /** `body.messages`. */
  messages: FakeMessage[];
  /** `body.tools`, or undefined when no tools were offered. */
  tools: FakeTool[] | undefined;
  /** `body.response_format`, or undefined. */
  responseFormat: unknown;
  /** `body.stream === true`. */
  stream: boolean;
  /** Request headers, keys lower-cased (as Node delivers them), multi-values joined by ", ". */
  headers: Record<string, string>;
  /** Text of the first system (or developer) message, or "". */
  system: string;
  /** Text of the last user message, or "". */
  lastUser: string;
  /** Tool messages that follow the last assistant message. */
  toolResults: FakeToolResult[];
}

/** Token usage a reply may force (total is derived). */
export interface FakeUsage {
  prompt_tokens: number;
  completion_tokens: number;
}

/** Fields any reply may carry. */
export interface FakeReplyCommon {
  /** Latency before answering, in ms; overrides `options.latencyMs`. */
  delayMs?: number;
  /** Usage to report instead of the character-based estimate. */
  usage?: FakeUsage;
}

/** Assistant text. */
export interface FakeContentReply extends FakeReplyCommon {
  content: string;
}

/** Assistant text = JSON.stringify(json). */
export interface FakeJsonReply extends FakeReplyCommon {
  json: unknown;
}

/** One tool call to emit; `arguments` is JSON-stringified (strings are passed through as-is). */
export interface FakeToolCall {
  name: string;
  arguments: unknown;
  id?: string;
}

/** Assistant message with tool_calls (finish_reason "tool_calls"). */
export interface FakeToolCallsReply extends FakeReplyCommon {
  toolCalls: FakeToolCall[];
  content?: string;
}

/** An HTTP error (or any raw status); default body is an OpenAI-style error object. */
export interface FakeErrorReply extends FakeReplyCommon {
  status: number;
  headers?: Record<string, string>;
  body?: unknown;
}

/** Never answer, until the client aborts or the server closes. */
export interface FakeHangReply extends FakeReplyCommon {
  hang: true;
}

/** Everything a responder may return. */
export type FakeReply =
  FakeContentReply | FakeJsonReply | FakeToolCallsReply | FakeErrorReply | FakeHangReply;

/** Decides the reply for each chat-completions request. */
export type FakeResponder = (req: FakeRequest) => FakeReply | Promise<FakeReply>;

/** How a logged request was (or is being) answered; "invalid" = 400 before the responder ran. */
export type FakeReplyKind =
  "content" | "json" | "toolCalls" | "status" | "hang" | "invalid" | "responderError";

/** One logged chat-completions request. */
export interface FakeLogEntry {
  /** Same as `FakeRequest.index`. */
  index: number;
  /** Arrival time, ms since the epoch (sub-ms precision). */
  startedAt: number;
  /** When the response finished, ms since the epoch; undefined while in flight or if aborted. */
  endedAt: number | undefined;
  /** HTTP status sent, recorded when the response finishes; undefined while pending / if aborted early. */
  status: number | undefined;
  /** Parsed body (undefined until read, or if it was not JSON). */
  body: unknown;
  /** Request headers as in `FakeRequest.headers`. */
  headers: Record<string, string>;
  /** The request's path and query, e.g. `/v1/chat/completions`. */
  url: string;
  /** True if the connection closed before the response was complete (client abort or close()). */
  aborted: boolean;
  /** Which kind of reply was chosen; undefined until the responder returned. */
  replyKind: FakeReplyKind | undefined;
}

/** Options for `startFakeOpenAI`. */
export interface FakeOpenAIOptions {
  /** Responder; default: schema-valid JSON for json_schema requests, else "ok". */
  respond?: FakeResponder;
  /** Delay before every answer in ms (default 0); a reply's `delayMs` overrides it. */
  latencyMs?: number;
}

/** A running fake server. `await using fake = await startFakeOpenAI()` closes it at scope exit. */
export interface FakeOpenAI extends AsyncDisposable {
  /** `http://127.0.0.1:PORT/v1`, for `configuration.baseURL`. */
  readonly baseUrl: string;
  /** The chosen port. */
  readonly port: number;
  /** Log of chat-completions requests since start / last `reset()` (live objects). */
  readonly requests: FakeLogEntry[];
  /** Highest number of concurrently unanswered chat-completions requests seen. */
  readonly maxInFlight: number;
  /** Number of log entries matching `predicate` (all if omitted). */
  count(predicate?: (entry: FakeLogEntry) => boolean): number;
  /** Current number of unanswered chat-completions requests. */
  inFlight(): number;
  /** Replace the responder for subsequent requests. */
  setResponder(fn: FakeResponder): void;
  /** Clear the log, the index / tool-call-id counters and `maxInFlight`. */
  reset(): void;
  /** Stop listening and destroy every open socket (hung requests included). Idempotent. */
  close(): Promise<void>;
}

// ---------------------------------------------------------------------------------------------
// JSON Schema → minimal valid example
// ---------------------------------------------------------------------------------------------

type Schema = Record<string, unknown>;

const isRecord = (v: unknown): v is Record<string, unknown> =>
  typeof v === "object" && v !== null && !Array.isArray(v);

/** Resolve a local `$ref` such as `#/$defs/Foo` or `#/definitions/Foo` against the root. */
function resolveRef(ref: string, root: Schema): Schema {
  if (ref === "#") return root;
  if (!ref.startsWith("#/")) return {};
  let node: unknown = root;
  for (const raw of ref.slice(2).split("/")) {
    const key = raw.replace(/~1/g, "/").replace(/~0/g, "~");
    node = isRecord(node) ? node[key] : undefined;
  }
  return isRecord(node) ? node : {};
}

function exampleNumber(schema: Schema, integer: boolean): number {
  const num = (k: string) => (typeof schema[k] === "number" ? schema[k] : undefined);
  // Draft 4 uses boolean exclusiveMinimum/Maximum next to minimum/maximum; later drafts use numbers.
  let lo = num("minimum");
  let hi = num("maximum");
  let loExcl = schema.exclusiveMinimum === true;
  let hiExcl = schema.exclusiveMaximum === true;
  const exLo = num("exclusiveMinimum");
  const exHi = num("exclusiveMaximum");
  if (exLo !== undefined && (lo === undefined || exLo >= lo)) [lo, loExcl] = [exLo, true];
  if (exHi !== undefined && (hi === undefined || exHi <= hi)) [hi, hiExcl] = [exHi, true];
  const fits = (v: number) =>
    (lo === undefined || (loExcl ? v > lo : v >= lo)) &&
    (hi === undefined || (hiExcl ? v < hi : v <= hi));
  if (fits(0)) return 0;
  const candidates: number[] = [];
  if (lo !== undefined)
    candidates.push(integer ? (loExcl ? Math.floor(lo) + 1 : Math.ceil(lo)) : loExcl ? lo + 1 : lo);
  if (hi !== undefined)
    candidates.push(integer ? (hiExcl ? Math.ceil(hi) - 1 : Math.floor(hi)) : hiExcl ? hi - 1 : hi);
  if (lo !== undefined && hi !== undefined)
    candidates.push(integer ? Math.ceil((lo + hi) / 2) : (lo + hi) / 2);
  return candidates.find(fits) ?? lo ?? hi ?? 0;
}

function exampleString(schema: Schema): string {
  const formats: Record<string, string> = {
    "date-time": "2024-01-01T00:00:00Z",
    date: "2024-01-01",
    time: "00:00:00Z",
    email: "user@example.com",
    uri: "https://example.com",
    url: "https://example.com",
    uuid: "00000000-0000-4000-8000-000000000000",
    ipv4: "127.0.0.1",
  };
  let s = (typeof schema.format === "string" ? formats[schema.format] : undefined) ?? "example";
  const min = typeof schema.minLength === "number" ? schema.minLength : 0;
  const max = typeof schema.maxLength === "number" ? schema.maxLength : Infinity;
  while (s.length < min) s += "x";
  return s.length > max ? s.slice(0, max) : s;
}

/**
 * A minimal value that validates against a (reasonable subset of) JSON Schema: objects get their
 * required properties, numbers prefer 0 within bounds, arrays get `minItems` items, enums/const
 * their first value, anyOf/oneOf their first branch. `pattern` and `multipleOf` are not honoured.
 */
export function exampleFromJsonSchema(schema: unknown, root: unknown = schema, depth = 0): unknown {
  if (schema === true || schema === undefined) return "example";
  if (!isRecord(schema) || depth > 32) return null;
  const rootSchema = isRecord(root) ? root : {};
  if (typeof schema.$ref === "string")
    return exampleFromJsonSchema(resolveRef(schema.$ref, rootSchema), root, depth + 1);
  if ("const" in schema) return schema.const;
  if (Array.isArray(schema.enum) && schema.enum.length > 0) return schema.enum[0];
  for (const key of ["anyOf", "oneOf"] as const) {
    const branches = schema[key];
    if (Array.isArray(branches) && branches.length > 0) {
      // Siblings of anyOf (e.g. a shared description) are merged into the chosen branch.
      const { [key]: _drop, ...rest } = schema;
      return exampleFromJsonSchema({ ...rest, ...(branches[0] as Schema) }, root, depth + 1);
    }
  }
  if (Array.isArray(schema.allOf) && schema.allOf.length > 0) {
    // Good enough for the common "allOf of object fragments" shape: merge properties/required.
    const { allOf, ...rest } = schema as Schema & { allOf: unknown[] };
    const merged: Schema = { ...rest };
    for (const part of allOf) {
      const p =
        isRecord(part) && typeof part.$ref === "string" ? resolveRef(part.$ref, rootSchema) : part;
      if (!isRecord(p)) continue;
      const props = {
        ...(isRecord(merged.properties) ? merged.properties : {}),
        ...(isRecord(p.properties) ? p.properties : {}),
      };
      const req = [
        ...(Array.isArray(merged.required) ? (merged.required as unknown[]) : []),
        ...(Array.isArray(p.required) ? (p.required as unknown[]) : []),
      ];
      Object.assign(merged, p, { properties: props, required: req });
    }
    return exampleFromJsonSchema(merged, root, depth + 1);
  }
  let type = schema.type;
  // `type: ["string", "null"]`: prefer a non-null type so the example is informative.
  if (Array.isArray(type)) type = type.find((t) => t !== "null") ?? type[0];
  if (type === undefined) {
    if (isRecord(schema.properties)) type = "object";
    else if (schema.items !== undefined || schema.prefixItems !== undefined) type = "array";
    else return "example";
  }
  switch (type) {
    case "object": {
      const out: Record<string, unknown> = {};
      const props = isRecord(schema.properties) ? schema.properties : {};
      const required = Array.isArray(schema.required) ? schema.required : [];
      for (const name of required) {
        if (typeof name === "string")
          out[name] = exampleFromJsonSchema(props[name], root, depth + 1);
      }
      return out;
    }
    case "array": {
      const prefix = Array.isArray(schema.prefixItems) ? schema.prefixItems : [];
      const min = typeof schema.minItems === "number" ? schema.minItems : 0;
      const out = prefix.map((s) => exampleFromJsonSchema(s, root, depth + 1));
      while (out.length < min) out.push(exampleFromJsonSchema(schema.items, root, depth + 1));
      return out;
    }
    case "string":
      return exampleString(schema);
    case "integer":
      return exampleNumber(schema, true);
    case "number":
      return exampleNumber(schema, false);
    case "boolean":
      return false;
    case "null":
      return null;
    default:
      return "example";
  }
}

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/** Text of a message `content`: a string, or the concatenated text parts of a parts array. */
function contentText(content: unknown): string {
  if (typeof content === "string") return content;
  if (Array.isArray(content)) {
    return content
      .map((part) => (isRecord(part) && typeof part.text === "string" ? part.text : ""))
      .join("");
  }
  return "";
}

const defaultResponder: FakeResponder = (req) => {
  const rf = req.responseFormat;
  if (isRecord(rf) && rf.type === "json_schema" && isRecord(rf.json_schema)) {
    return { json: exampleFromJsonSchema(rf.json_schema.schema) };
  }
  // Tools offered but never called yet: still answer plain text, so an agent loop driven by the
  // default responder terminates after one turn instead of calling tools with made-up arguments.
  if (req.tools && req.tools.length > 0 && req.toolResults.length === 0) return { content: "ok" };
  return { content: "ok" };
};

function errorType(status: number): { type: string; code: string | null } {
  if (status === 400) return { type: "invalid_request_error", code: null };
  if (status === 401) return { type: "invalid_request_error", code: "invalid_api_key" };
  if (status === 404) return { type: "invalid_request_error", code: "not_found" };
  if (status === 429) return { type: "requests", code: "rate_limit_exceeded" };
  if (status >= 500) return { type: "server_error", code: null };
  return { type: "invalid_request_error", code: null };
}

/** OpenAI error body: `{ error: { message, type, param, code } }`. */
function errorBody(status: number, message: string): unknown {
  return { error: { message, ...errorType(status), param: null } };
}

function sendJson(
  res: http.ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  if (res.destroyed || res.writableEnded) return;
  const text = typeof body === "string" ? body : JSON.stringify(body);
  res.writeHead(status, {
    "content-type": typeof body === "string" ? "text/plain; charset=utf-8" : "application/json",
    "content-length": Buffer.byteLength(text),
    ...headers,
  });
  res.end(text);
}

function flattenHeaders(h: http.IncomingHttpHeaders): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(h)) {
    if (v !== undefined) out[k] = Array.isArray(v) ? v.join(", ") : v;
  }
  return out;
}

/** Epoch milliseconds with sub-millisecond precision (comparable across requests). */
const now = () => performance.timeOrigin + performance.now();

/** Resolves after `ms`, or early when `signal` aborts (never rejects). */
function sleep(ms: number, signal: AbortSignal): Promise<void> {
  if (ms <= 0 || signal.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener("abort", done, { once: true });
  });
}

/** Split `s` into at most `n` non-empty pieces (at least one piece, possibly ""). */
function splitInto(s: string, n: number): string[] {
  if (s.length === 0) return [];
  const size = Math.ceil(s.length / n);
  const out: string[] = [];
  for (let i = 0; i < s.length; i += size) out.push(s.slice(i, i + size));
  return out;
}

const tokens = (chars: number) => Math.max(1, Math.ceil(chars / 4));

// ---------------------------------------------------------------------------------------------
// Server
// ---------------------------------------------------------------------------------------------

/** Start a fake OpenAI server on 127.0.0.1 with a free port. */
export async function startFakeOpenAI(options: FakeOpenAIOptions = {}): Promise<FakeOpenAI> {
  let responder: FakeResponder = options.respond ?? defaultResponder;
  const latencyMs = options.latencyMs ?? 0;

  let log: FakeLogEntry[] = [];
  let nextIndex = 0;
  let nextCallId = 1;
  let maxInFlight = 0;
  /** Unanswered chat-completions requests; survives reset() because those requests are real. */
  const inFlight = new Set<FakeLogEntry>();
  /** One controller per open request, aborted when its connection closes or the server stops. */
  const pending = new Set<AbortController>();
  const sockets = new Set<Socket>();
  let closing: Promise<void> | undefined;

  async function readBody(req: http.IncomingMessage): Promise<string> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    return Buffer.concat(chunks).toString("utf8");
  }

  function buildRequest(
    index: number,
    body: Record<string, unknown>,
    headers: Record<string, string>,
  ): FakeRequest {
    const messages = (Array.isArray(body.messages) ? body.messages : []).filter(
      isRecord,
    ) as FakeMessage[];
    const firstSystem = messages.find((m) => m.role === "system" || m.role === "developer");
    const lastUser = messages.findLast((m) => m.role === "user");
    let lastAssistant = -1;
    messages.forEach((m, i) => {
      if (m.role === "assistant") lastAssistant = i;
    });
    const toolResults = messages
      .slice(lastAssistant + 1)
      .filter((m) => m.role === "tool")
      .map((m) => ({ tool_call_id: m.tool_call_id ?? "", content: contentText(m.content) }));
    return {
      index,
      body,
      model: typeof body.model === "string" ? body.model : "",
      messages,
      tools: Array.isArray(body.tools) ? (body.tools as FakeTool[]) : undefined,
      responseFormat: body.response_format,
      stream: body.stream === true,
      headers,
      system: contentText(firstSystem?.content),
      lastUser: contentText(lastUser?.content),
      toolResults,
    };
  }

  /** Write a successful chat completion (JSON or SSE) for a content/json/toolCalls reply. */
  function writeCompletion(
    res: http.ServerResponse,
    fr: FakeRequest,
    reply: FakeContentReply | FakeJsonReply | FakeToolCallsReply,
  ): void {
    const id = `chatcmpl-fake-${fr.index}`;
    const created = Math.floor(Date.now() / 1000);
    const model = fr.model || "fake-model";
    let content: string | null;
    let toolCalls:
      { id: string; type: "function"; function: { name: string; arguments: string } }[] | undefined;
    if ("toolCalls" in reply) {
      content = reply.content ?? null;
      toolCalls = reply.toolCalls.map((tc) => ({
        id: tc.id ?? `call_${nextCallId++}`,
        type: "function",
        function: {
          name: tc.name,
          arguments:
            typeof tc.arguments === "string" ? tc.arguments : JSON.stringify(tc.arguments ?? {}),
        },
      }));
    } else if ("json" in reply) {
      content = JSON.stringify(reply.json);
    } else {
      content = reply.content;
    }
    const finishReason = toolCalls ? "tool_calls" : "stop";

    const promptChars = fr.messages.reduce((n, m) => n + contentText(m.content).length, 0);
    const answerChars =
      (content ?? "").length +
      (toolCalls ?? []).reduce(
        (n, tc) => n + tc.function.name.length + tc.function.arguments.length,
        0,
      );
    const pt = reply.usage?.prompt_tokens ?? tokens(promptChars);
    const ct = reply.usage?.completion_tokens ?? tokens(answerChars);
    const usage = { prompt_tokens: pt, completion_tokens: ct, total_tokens: pt + ct };

    if (!fr.stream) {
      sendJson(res, 200, {
        id,
        object: "chat.completion",
        created,
        model,
        system_fingerprint: "fp_fake",
        choices: [
          {
            index: 0,
            message: {
              role: "assistant",
              content,
              refusal: null,
              annotations: [],
              ...(toolCalls ? { tool_calls: toolCalls } : {}),
            },
            logprobs: null,
            finish_reason: finishReason,
          },
        ],
        usage,
      });
      return;
    }

    // Server-Sent Events, shaped like api.openai.com: with include_usage every chunk carries
    // `usage: null` and one extra final chunk has `choices: []` plus the usage.
    const streamOptions = fr.body.stream_options;
    const includeUsage = isRecord(streamOptions) && streamOptions.include_usage === true;
    const frames: string[] = [];
    const chunk = (choices: unknown[], extra: Record<string, unknown> = {}) =>
      frames.push(
        `data: ${JSON.stringify({
          id,
          object: "chat.completion.chunk",
          created,
          model,
          system_fingerprint: "fp_fake",
          choices,
          ...(includeUsage ? { usage: null } : {}),
          ...extra,
        })}\n\n`,
      );
    const delta = (d: Record<string, unknown>, finish: string | null = null) =>
      chunk([{ index: 0, delta: d, logprobs: null, finish_reason: finish }]);

    delta({ role: "assistant", content: toolCalls && content === null ? null : "", refusal: null });
    for (const piece of splitInto(content ?? "", 3)) delta({ content: piece });
    (toolCalls ?? []).forEach((tc, i) => {
      // First delta names the call, the following ones append argument fragments (by index).
      delta({
        tool_calls: [
          {
            index: i,
            id: tc.id,
            type: "function",
            function: { name: tc.function.name, arguments: "" },
          },
        ],
      });
      for (const piece of splitInto(tc.function.arguments, 2)) {
        delta({ tool_calls: [{ index: i, function: { arguments: piece } }] });
      }
    });
    delta({}, finishReason);
    if (includeUsage) chunk([], { usage });
    frames.push("data: [DONE]\n\n");

    if (res.destroyed || res.writableEnded) return;
    res.writeHead(200, {
      "content-type": "text/event-stream",
      "cache-control": "no-cache",
      connection: "keep-alive",
    });
    for (const f of frames) res.write(f);
    res.end();
  }

  async function handleChat(
    req: http.IncomingMessage,
    res: http.ServerResponse,
    signal: AbortSignal,
  ): Promise<void> {
    const headers = flattenHeaders(req.headers);
    const entry: FakeLogEntry = {
      index: nextIndex++,
      startedAt: now(),
      endedAt: undefined,
      status: undefined,
      body: undefined,
      headers,
      url: req.url ?? "/",
      aborted: false,
      replyKind: undefined,
    };
    log.push(entry);
    inFlight.add(entry);
    maxInFlight = Math.max(maxInFlight, inFlight.size);
    // 'finish' = the whole response was handed to the OS. 'close' also fires after that, but
    // alone (socket died first) it means the client aborted or close() cut the request off.
    res.on("finish", () => {
      inFlight.delete(entry);
      entry.status = res.statusCode;
      entry.endedAt = now();
    });
    res.on("close", () => {
      inFlight.delete(entry);
      if (!res.writableFinished) {
        entry.aborted = true;
        if (res.headersSent) entry.status = res.statusCode;
      }
    });

    const raw = await readBody(req);
    let body: unknown;
    try {
      body = JSON.parse(raw);
    } catch {
      entry.replyKind = "invalid";
      sendJson(
        res,
        400,
        errorBody(400, "We could not parse the JSON body of your request. (fake-openai)"),
      );
      return;
    }
    entry.body = body;
    if (!isRecord(body) || !Array.isArray(body.messages)) {
      entry.replyKind = "invalid";
      sendJson(res, 400, errorBody(400, "Missing required parameter: 'messages'. (fake-openai)"));
      return;
    }

    const fr = buildRequest(entry.index, body, headers);
    let reply: FakeReply;
    try {
      reply = await responder(fr);
    } catch (err) {
      // Surface responder bugs as a 500 the test can see, instead of an unhandled rejection.
      entry.replyKind = "responderError";
      sendJson(res, 500, errorBody(500, `fake-openai responder threw: ${String(err)}`));
      return;
    }
    entry.replyKind =
      "hang" in reply
        ? "hang"
        : "status" in reply
          ? "status"
          : "toolCalls" in reply
            ? "toolCalls"
            : "json" in reply
              ? "json"
              : "content";

    await sleep(reply.delayMs ?? latencyMs, signal);
    if (signal.aborted) return;

    if ("hang" in reply) {
      // Park until the connection goes away (client abort or close()); nothing is ever written.
      await new Promise<void>((resolve) =>
        signal.addEventListener("abort", () => resolve(), { once: true }),
      );
      return;
    }
    if ("status" in reply) {
      sendJson(
        res,
        reply.status,
        reply.body ?? errorBody(reply.status, `Fake error ${reply.status}`),
        reply.headers,
      );
      return;
    }
    writeCompletion(res, fr, reply);
  }

  async function handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    // Client aborts surface as 'error' (ECONNRESET) on both streams; they are expected here.
    req.on("error", () => {});
    res.on("error", () => {});
    const ac = new AbortController();
    pending.add(ac);
    res.on("close", () => {
      pending.delete(ac);
      ac.abort();
    });

    const path = (req.url ?? "/").split("?")[0];
    try {
      if (req.method === "POST" && CHAT_PATH.test(path ?? "")) {
        await handleChat(req, res, ac.signal);
      } else if (req.method === "GET" && path === "/v1/models") {
        req.resume();
        sendJson(res, 200, {
          object: "list",
          data: [{ id: "fake-model", object: "model", created: 0, owned_by: "fake-openai" }],
        });
      } else {
        req.resume();
        sendJson(
          res,
          404,
          errorBody(404, `Unknown request URL: ${req.method ?? "?"} ${path ?? ""}. (fake-openai)`),
        );
      }
    } catch (err) {
      // Typically a read error after the client went away; answer if still possible.
      if (!res.headersSent)
        sendJson(res, 500, errorBody(500, `fake-openai internal error: ${String(err)}`));
      else res.destroy();
    }
  }

  const server = http.createServer((req, res) => void handle(req, res));
  server.on("connection", (socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
  });
  // A client resetting mid-handshake must not become an 'error' on the server.
  server.on("clientError", (_err, socket) => socket.destroy());

  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      server.off("error", reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;

  const close = (): Promise<void> => {
    closing ??= (async () => {
      // Stop accepting first, then wake parked handlers and kill every socket: server.close()
      // alone would wait for hung and keep-alive connections forever.
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const ac of pending) ac.abort();
      server.closeAllConnections();
      for (const s of sockets) s.destroy();
      await closed;
      // Responses emit 'close' a tick or two after their socket; wait (bounded) so that, once
      // close() resolves, every request cut off by it is already marked `aborted` in the log.
      for (let i = 0; i < 100 && inFlight.size > 0; i++) await setImmediateP();
    })();
    return closing;
  };

  return {
    baseUrl: `http://127.0.0.1:${port}/v1`,
    port,
    get requests() {
      return log;
    },
    get maxInFlight() {
      return maxInFlight;
    },
    count: (predicate) => (predicate ? log.filter(predicate).length : log.length),
    inFlight: () => inFlight.size,
    setResponder(fn) {
      responder = fn;
    },
    reset() {
      log = [];
      nextIndex = 0;
      nextCallId = 1;
      maxInFlight = 0;
    },
    close,
    [Symbol.asyncDispose]: close,
  };
}
