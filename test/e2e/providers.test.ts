/**
 * Provider profiles against a real restate-server and `pagent serve`: Azure OpenAI's deployment URLs,
 * and the real Portkey AI gateway between pagent and the fake provider, configured by headers only.
 * The endpoint and the CLI read one config file, so the endpoint grants exactly the profiles the
 * CLI names; each profile's key lives in its own variable, only in the endpoint's environment.
 */
import { writeFileSync } from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runCli, type CliOptions, type CliResult } from "../helpers/cli.js";
import type { FakeOpenAI, FakeReply } from "../helpers/fake-openai.js";
import { startGateway, type Gateway } from "../helpers/gateway.js";
import { inputOf, schemaAnswer } from "../helpers/request-log.js";
import { useConnectedStack } from "../helpers/stack.js";
import { filesContaining } from "../helpers/procs.js";
import { freePort } from "../../src/restate/server.js";

const AZURE_KEY = "az-key-AZSECRET-1";
const UPSTREAM_KEY = "sk-upstream-UPSECRET-2";
const KEYS = { PAGENT_TEST_AZURE_KEY: AZURE_KEY, PAGENT_TEST_UPSTREAM_KEY: UPSTREAM_KEY };
const ONE = ["--analysis", "one=Say one thing about the text", "--only", "one"];

let fake: FakeOpenAI;
let gatewayStarted: Promise<Gateway>;
let gateway: Gateway;
let dir: string;

/** The endpoint and the CLI read it, in `dir`: written once the fake and the gateway listen. */
async function writeConfig(): Promise<void> {
  const closedPort = await freePort();
  const portkey = (customHost: string) => ({
    baseUrl: gateway.baseUrl,
    headers: { "x-portkey-provider": "openai", "x-portkey-custom-host": customHost },
    apiKeyEnv: "PAGENT_TEST_UPSTREAM_KEY",
  });
  const config = {
    providers: {
      azure: {
        type: "azure",
        endpoint: `http://127.0.0.1:${fake.port}`,
        deployment: "prod-4o",
        apiVersion: "2024-10-21",
        apiKeyEnv: "PAGENT_TEST_AZURE_KEY",
      },
      portkey: { ...portkey(fake.baseUrl), models: ["gpt-4o-mini"] },
      // The gateway with no provider header, and one whose provider is down.
      "portkey-bare": { baseUrl: gateway.baseUrl, apiKeyEnv: "PAGENT_TEST_UPSTREAM_KEY" },
      "portkey-down": portkey(`http://127.0.0.1:${closedPort}/v1`),
      direct: { baseUrl: fake.baseUrl, apiKeyEnv: "PAGENT_TEST_DIRECT_KEY" },
    },
  };
  writeFileSync(path.join(dir, "pagent.config.json"), JSON.stringify(config, null, 2));
}

// The gateway starts while the restate-server does (not awaited here); the config names it.
beforeAll(() => {
  gatewayStarted = startGateway();
});
afterAll(async () => (await gatewayStarted?.catch(() => undefined))?.close());

const stack = useConnectedStack({
  name: "providers",
  // No OPENAI_API_KEY anywhere: each profile's key is its own variable.
  serveEnv: KEYS,
  beforeServe: async (parts) => {
    ({ fake, dir } = parts);
    gateway = await gatewayStarted;
    await writeConfig();
  },
  // The config grants the profiles; no flag grants anything more.
  grants: () => [],
  inDir: true,
  respond: schemaAnswer,
  startTimeoutMs: 90_000,
});

function cli(args: string[], options: CliOptions = {}): Promise<CliResult> {
  return stack.cli(args, options);
}

function explain(res: CliResult): string {
  return `exit ${res.code}\nstdout: ${res.stdout.slice(-3000)}\nstderr: ${res.stderr.slice(-3000)}\ngateway: ${gateway.output().slice(-2000)}`;
}

let unique = 0;
function uniqueText(what: string): string {
  unique++;
  return `${what} (${unique}-${process.pid}-${Date.now()}): the launch went well.`;
}

interface ResultJson {
  status: string;
  model: Record<string, unknown>;
  result: Record<string, unknown> & { answer?: string };
  errors: Record<string, { message: string }>;
}

describe("Azure OpenAI", () => {
  it("calls the deployment URL with api-version and the key in api-key only", async () => {
    const res = await cli([
      "analyze",
      "--text",
      uniqueText("azure"),
      "--model",
      "azure:gpt-4o",
      ...ONE,
      "--json",
    ]);
    expect(res.code, explain(res)).toBe(0);
    const out = JSON.parse(res.stdout) as ResultJson;
    expect(out.model).toMatchObject({ name: "gpt-4o", provider: { name: "azure", type: "azure" } });
    expect(res.stdout).not.toContain(AZURE_KEY);
    expect(fake.requests).toHaveLength(1);
    const [request] = fake.requests;
    expect(request!.url).toBe(
      "/openai/deployments/prod-4o/chat/completions?api-version=2024-10-21",
    );
    expect(request!.headers["api-key"]).toBe(AZURE_KEY);
    expect(request!.headers.authorization).toBeUndefined();
  });
});

describe("through the real Portkey gateway", () => {
  it("analyze: every call goes through the gateway with the profile's own key", async () => {
    const res = await cli([
      "analyze",
      "--text",
      uniqueText("gateway"),
      "--provider",
      "portkey",
      "--json",
    ]);
    expect(res.code, explain(res)).toBe(0);
    const out = JSON.parse(res.stdout) as ResultJson;
    expect(out.model).toMatchObject({ name: "gpt-4o-mini", provider: { name: "portkey" } });
    expect(Object.keys(out.result).sort()).toEqual(["key-points", "sentiment", "summary"]);
    expect(fake.requests).toHaveLength(3);
    for (const request of fake.requests) {
      expect(request.url).toBe("/v1/chat/completions");
      expect(request.headers.authorization).toBe(`Bearer ${UPSTREAM_KEY}`);
      // Portkey's routing headers end at the gateway.
      expect(request.headers["x-portkey-provider"]).toBeUndefined();
    }
  });

  it("ask: parallel tool calls and their results cross the gateway both ways", async () => {
    fake.setResponder((req): FakeReply =>
      req.toolResults.length > 0
        ? { content: `results: ${req.toolResults.map((r) => r.content).join(" | ")}` }
        : {
            toolCalls: [
              { id: "call_calc", name: "calculator", arguments: { expression: "6*7" } },
              { id: "call_wc", name: "word_count", arguments: { text: "a b c" } },
            ],
          },
    );
    const res = await cli([
      "ask",
      "compute and count",
      "--model",
      "portkey:gpt-4o-mini",
      "--tools",
      "calculator,word_count",
      "--json",
    ]);
    expect(res.code, explain(res)).toBe(0);
    const out = JSON.parse(res.stdout) as ResultJson;
    expect(out.result.answer).toMatch(/^results: 42 \| words: 3/);
    expect(fake.requests).toHaveLength(2);
    expect(fake.requests[1]!.body).toMatchObject({
      messages: expect.arrayContaining([
        expect.objectContaining({ role: "tool", tool_call_id: "call_calc", content: "42" }),
        expect.objectContaining({ role: "tool", tool_call_id: "call_wc" }),
      ]) as unknown,
    });
  });

  it("a batch whose 429s come back through the gateway waits the provider's Retry-After and finishes", async () => {
    const seen = new Set<string>();
    fake.setResponder((req): FakeReply => {
      if (seen.has(req.lastUser)) return schemaAnswer(req);
      seen.add(req.lastUser);
      return {
        status: 429,
        headers: { "retry-after": "1" },
        body: {
          error: {
            message: "Rate limit reached for requests",
            type: "requests",
            code: "rate_limit_exceeded",
          },
        },
      };
    });
    const files = [0, 1, 2, 3].map((i) => {
      const file = path.join(dir, `batch-${unique}-${i}.txt`);
      writeFileSync(file, uniqueText(`batch input ${i}`));
      return file;
    });
    const res = await cli(["analyze", ...files, "--provider", "portkey", ...ONE, "--json"]);
    expect(res.code, explain(res)).toBe(0);
    const rejected = fake.requests.filter((r) => r.status === 429);
    expect(rejected).toHaveLength(4);
    expect(fake.requests).toHaveLength(8);
    // Each input's retry came at least the second the provider asked for after its 429.
    for (const first of rejected) {
      const retry = fake.requests.find((r) => r !== first && inputOf(r) === inputOf(first))!;
      expect(retry.startedAt - first.endedAt!).toBeGreaterThanOrEqual(900);
    }
  });

  it("the gateway's own refusal is a clear, final error (exit 1), sent once", async () => {
    const res = await cli([
      "analyze",
      "--text",
      uniqueText("bare"),
      "--model",
      "portkey-bare:m",
      ...ONE,
      "--json",
    ]);
    expect(res.code, explain(res)).toBe(1);
    const out = JSON.parse(res.stdout) as ResultJson;
    expect(out.errors.one!.message).toBe(
      "LLM request refused (HTTP 400): 400 Either x-portkey-config or x-portkey-provider header is required",
    );
    expect(fake.requests).toHaveLength(0);
  });

  it("a provider the gateway cannot reach is retried, then reported in the gateway's words (exit 69)", async () => {
    const res = await cli([
      "analyze",
      "--text",
      uniqueText("down"),
      "--model",
      "portkey-down:m",
      ...ONE,
      "--retries",
      "2",
      "--json",
    ]);
    // 5xx after every retry means the provider is unavailable (exit 69), named by its base URL.
    expect(res.code, explain(res)).toBe(69);
    const out = JSON.parse(res.stdout) as ResultJson;
    expect(out.errors.one!.message).toMatch(
      /^HTTP 500 from http:\/\/127\.0\.0\.1:\d+\/v1: 500 Message: fetch failed Cause: Error: connect ECONNREFUSED 127\.0\.0\.1:\d+/,
    );
  });

  it("a request naming a profile the endpoint was not given is refused before anything is sent", async () => {
    // Same name, but the gateway's routing pointed elsewhere: another profile, not granted.
    const other = path.join(dir, "other.config.json");
    writeFileSync(
      other,
      JSON.stringify({
        providers: {
          portkey: {
            baseUrl: gateway.baseUrl,
            headers: {
              "x-portkey-provider": "openai",
              "x-portkey-custom-host": "http://127.0.0.1:9/v1",
            },
            apiKeyEnv: "PAGENT_TEST_UPSTREAM_KEY",
          },
        },
      }),
    );
    const res = await cli([
      "analyze",
      "--text",
      uniqueText("foreign"),
      "--config",
      other,
      "--model",
      "portkey:m",
      ...ONE,
      "--json",
    ]);
    expect(res.code, explain(res)).toBe(1);
    expect(res.stdout).toMatch(
      /provider profile \\?"portkey\\?".*is not granted to this pagent endpoint/,
    );
    expect(fake.requests).toHaveLength(0);
  });
});

describe("embedded mode", () => {
  it("starts the endpoint with the profile's key variable, and restarts an idle one when it changes", async () => {
    const home = path.join(dir, "home");
    const run = (key: string) =>
      runCli(["analyze", "--text", uniqueText("embedded"), "--model", "direct:m", ...ONE], {
        cwd: dir,
        env: { PAGENT_HOME: home, OPENAI_API_KEY: undefined, PAGENT_TEST_DIRECT_KEY: key },
        timeoutMs: 120_000,
      });
    try {
      const first = await run("direct-key-ONE-1");
      expect(first.code, explain(first)).toBe(0);
      const second = await run("direct-key-TWO-2");
      expect(second.code, explain(second)).toBe(0);
      expect(fake.requests.map((r) => r.headers.authorization)).toEqual([
        "Bearer direct-key-ONE-1",
        "Bearer direct-key-TWO-2",
      ]);
      // Only a fingerprint of the keys is kept: no file of the home holds one.
      expect(filesContaining(home, "direct-key-")).toEqual([]);
    } finally {
      await runCli(["server", "stop"], { env: { PAGENT_HOME: home }, timeoutMs: 60_000 });
    }
  }, 180_000);
});
