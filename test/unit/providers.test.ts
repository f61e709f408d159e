import { describe, expect, it } from "vitest";
import { askedByModel, emptyGrants, mergeGrants, refusal } from "../../services/capabilities.js";
import { classifyLlmError, redact } from "../../services/llm/chat.js";
import { clientSettings, errorBodyFetch, expand, varsOf } from "../../services/llm/providers.js";
import type { ModelSpec, ProviderSpec } from "../../services/types.js";
import { modelSpec } from "../../src/commands/shared.js";
import { serveGrants } from "../../src/commands/serve.js";
import { resolveConfig, type ConfigFile, type GlobalFlags } from "../../src/config.js";
import { UsageError } from "../../src/errors.js";
import { startFakeOpenAI } from "../helpers/fake-openai.js";

const file: ConfigFile = {
  headers: { "X-Title": "pagent", "Helicone-Auth": "Bearer ${HELICONE_KEY}" },
  providers: {
    openrouter: {
      baseUrl: "https://openrouter.ai/api/v1",
      apiKeyEnv: "OPENROUTER_API_KEY",
      headers: { "HTTP-Referer": "https://example.org" },
      models: ["meta-llama/llama-3.1-8b-instruct"],
    },
    work: {
      baseUrl: "http://proxy.internal/v1",
      headers: { "X-Proxy-Token": "${PROXY_TOKEN:-none}" },
      query: { team: "data" },
    },
    azure: {
      type: "azure",
      endpoint: "https://acme.openai.azure.com/",
      deployment: "gpt4o-prod",
      apiVersion: "2024-10-21",
      apiKeyEnv: "AZURE_OPENAI_API_KEY",
    },
  },
};

function resolve(flags: GlobalFlags, env: Record<string, string> = {}) {
  return resolveConfig(flags, { HOME: "/home/u", ...env }, file);
}

function usageMessage(fn: () => unknown): string {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(UsageError);
    return (error as Error).message;
  }
  throw new Error("no UsageError");
}

describe("header templates", () => {
  it("expands ${VAR} and ${VAR:-default} from the given environment only", () => {
    expect(varsOf("Bearer ${A} and ${B:-x}")).toEqual(["A", "B"]);
    expect(expand("Bearer ${A}/${B:-dflt}", { A: "aa" })).toBe("Bearer aa/dflt");
    expect(() => expand("Bearer ${MISSING}", {})).toThrow(/\$\{MISSING\} is not set/);
  });
});

describe("resolving profiles and headers", () => {
  it("--model PROFILE:MODEL picks the profile; the job records names and unexpanded settings", () => {
    const config = resolve(
      { model: "openrouter:meta-llama/llama-3.1-8b-instruct", header: ["X-Run: 7"] },
      { OPENROUTER_API_KEY: "or-key-1", HELICONE_KEY: "hk-2", UNRELATED: "x" },
    );
    const spec = modelSpec(config);
    expect(spec).toEqual({
      name: "meta-llama/llama-3.1-8b-instruct",
      provider: {
        name: "openrouter",
        baseUrl: "https://openrouter.ai/api/v1",
        apiKeyEnv: "OPENROUTER_API_KEY",
        headers: { "HTTP-Referer": "https://example.org" },
      },
      headers: { "X-Title": "pagent", "Helicone-Auth": "Bearer ${HELICONE_KEY}", "X-Run": "7" },
    });
    // The embedded endpoint gets exactly the variables the config and flags name.
    expect(config.secretEnv).toEqual({ OPENROUTER_API_KEY: "or-key-1", HELICONE_KEY: "hk-2" });
  });

  it("--provider, a model listed by a profile, and no profile at all", () => {
    expect(resolve({ provider: "openrouter" }).model).toBe("meta-llama/llama-3.1-8b-instruct");
    expect(resolve({ model: "meta-llama/llama-3.1-8b-instruct" }).provider?.name).toBe(
      "openrouter",
    );
    // Ollama names have colons: only a configured profile name is a prefix.
    const plain = resolve({ model: "llama3.1:8b" });
    expect(plain.model).toBe("llama3.1:8b");
    expect(plain.provider).toBeUndefined();
  });

  it("refuses unknown profiles, conflicts and credentials written out", () => {
    expect(usageMessage(() => resolve({ provider: "nope", model: "m" }))).toMatch(
      /no provider "nope".*openrouter, work, azure/,
    );
    expect(usageMessage(() => resolve({ provider: "work", model: "openrouter:m" }))).toMatch(
      /choose one/,
    );
    expect(usageMessage(() => resolve({ provider: "work", baseUrl: "http://x/v1" }))).toMatch(
      /exclude each other/,
    );
    expect(usageMessage(() => resolve({ header: ["Authorization: Bearer sk-123456"] }))).toMatch(
      /environment variable.*"Authorization: Bearer \$\{MY_AUTHORIZATION\}"/,
    );
    expect(usageMessage(() => resolve({ header: ["no colon"] }))).toMatch(/Name: value/);
    expect(() => resolve({ header: ["x-api-key: ${KEY}"] })).not.toThrow();
  });
});

describe("what the endpoint sends", () => {
  const credentials = {
    apiKey: "sk-default-000",
    env: { OPENROUTER_API_KEY: "or-key-1", HELICONE_KEY: "hk-2", AZURE_OPENAI_API_KEY: "az-3" },
  };

  it("a profile's URL, key variable, headers and query; the job's headers on top", () => {
    const config = resolve({ provider: "work", model: "m", header: ["X-Title: mine"] });
    const settings = clientSettings(modelSpec(config), credentials);
    expect(settings).toEqual({
      baseUrl: "http://proxy.internal/v1",
      apiKey: "sk-default-000",
      headers: {
        "X-Proxy-Token": "none",
        "Helicone-Auth": "Bearer hk-2",
        "X-Title": "mine",
      },
      query: { team: "data" },
      secrets: ["sk-default-000", "none", "Bearer hk-2", "mine"],
    });
  });

  it("Azure: the deployment, its api-version, and the profile's key", () => {
    const settings = clientSettings(modelSpec(resolve({ model: "azure:gpt-4o" })), credentials);
    expect(settings.baseUrl).toBe("https://acme.openai.azure.com/openai/deployments/gpt4o-prod");
    expect(settings.azure).toEqual({
      basePath: "https://acme.openai.azure.com/openai/deployments",
      deployment: "gpt4o-prod",
      apiVersion: "2024-10-21",
    });
    expect(settings.apiKey).toBe("az-3");
  });

  it("every secret is cut out of a provider's error", () => {
    const message = "bad auth Bearer hk-2x and or-key-1 and sk-default-000";
    expect(redact(message, ["hk-2x", "Bearer hk-2x", "or-key-1"])).toBe(
      "bad auth [redacted] and [redacted] and [redacted]",
    );
    const error = Object.assign(new Error(`Helicone-Auth Bearer hk-2x refused`), { status: 401 });
    expect(classifyLlmError(error, 1000, undefined, ["Bearer hk-2x"]).message).toBe(
      "LLM request refused (HTTP 401): Helicone-Auth [redacted] refused",
    );
  });
});

describe("profiles and headers as capabilities", () => {
  const provider: ProviderSpec = {
    name: "work",
    baseUrl: "http://proxy.internal/v1",
    headers: { "X-Proxy-Token": "${PROXY_TOKEN:-none}" },
    query: { team: "data" },
  };

  it("a job names a granted profile exactly, and only granted headers that read variables", () => {
    const granted = mergeGrants(emptyGrants(), {
      providers: [provider],
      headers: ["Helicone-Auth: Bearer ${HELICONE_KEY}"],
    });
    const job: ModelSpec = {
      name: "m",
      provider,
      headers: { "helicone-auth": "Bearer ${HELICONE_KEY}", "X-Title": "free" },
    };
    expect(refusal(granted, askedByModel(job))).toBeUndefined();
    // The same name with another URL or key variable is another profile.
    const moved = { ...job, provider: { ...provider, baseUrl: "http://evil.example/v1" } };
    expect(refusal(granted, askedByModel(moved))).toMatch(/^provider profile "work"/);
    const stolen = { ...job, provider: { ...provider, apiKeyEnv: "AWS_SECRET_ACCESS_KEY" } };
    expect(refusal(granted, askedByModel(stolen))).toMatch(/not granted/);
    // A header that would make the endpoint read another variable.
    const reads = { name: "m", provider, headers: { "X-Leak": "${AWS_SECRET_ACCESS_KEY}" } };
    expect(refusal(granted, askedByModel(reads))).toMatch(
      /^header "X-Leak: \$\{AWS_SECRET_ACCESS_KEY\}" is not granted/,
    );
  });

  it("pagent serve grants its config's profiles and headers", () => {
    const config = resolve({});
    const grants = serveGrants(
      { host: "127.0.0.1", identityKey: [], allowBaseUrl: [], allowRoot: [], allowHost: [] },
      config,
      "/",
    );
    expect(grants.providers.map((p) => p.name)).toEqual(["openrouter", "work", "azure"]);
    expect(grants.headers).toEqual(["Helicone-Auth: Bearer ${HELICONE_KEY}"]);
    const job = modelSpec(resolve({ model: "work:m" }));
    expect(refusal(grants, askedByModel(job))).toBeUndefined();
  });
});

describe("a gateway's own error bodies", () => {
  it("are rewritten into OpenAI's shape; OpenAI's own and successes pass untouched", async () => {
    await using fake = await startFakeOpenAI();
    const bodies: unknown[] = [
      {
        status: "failure",
        message: "Either x-portkey-config or x-portkey-provider header is required",
      },
      { error: "model not allowed by proxy policy" },
      { error: { message: "Incorrect API key provided", type: "invalid_request_error" } },
    ];
    const seen: unknown[] = [];
    for (const body of bodies) {
      fake.setResponder(() => ({ status: 400, body, headers: { "retry-after": "2" } }));
      const res = await errorBodyFetch(`${fake.baseUrl}/chat/completions`, {
        method: "POST",
        body: JSON.stringify({ model: "m", messages: [] }),
      });
      expect(res.status).toBe(400);
      expect(res.headers.get("retry-after")).toBe("2");
      seen.push(await res.json());
    }
    expect(seen).toEqual([
      { error: { message: "Either x-portkey-config or x-portkey-provider header is required" } },
      { error: { message: "model not allowed by proxy policy" } },
      bodies[2],
    ]);
    fake.setResponder(() => ({ content: "fine" }));
    const ok = await errorBodyFetch(`${fake.baseUrl}/chat/completions`, {
      method: "POST",
      body: JSON.stringify({ model: "m", messages: [{ role: "user", content: "hi" }] }),
    });
    expect(ok.status).toBe(200);
  });
});
