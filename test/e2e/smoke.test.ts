import { describe, expect, it } from "vitest";
import { runCli } from "../helpers/cli.js";
import type { FakeOpenAI } from "../helpers/fake-openai.js";
import type { TestRestate } from "../helpers/restate.js";
import { useConnectedStack } from "../helpers/stack.js";

let restate: TestRestate;
let fake: FakeOpenAI;

useConnectedStack({
  name: "smoke",
  fake: { latencyMs: 300 },
  serveEnv: { OPENAI_API_KEY: "sk-test-key" },
  started: (stack) => ({ restate, fake } = stack),
});

describe("smoke", () => {
  it("analyzes a text through connect mode with the real OpenAI client", async () => {
    const res = await runCli([
      "analyze",
      "--text",
      "Great work, I love it.",
      "--model",
      "fake",
      "--base-url",
      fake.baseUrl,
      "--json",
      "--restate-url",
      restate.ingressUrl,
      "--admin-url",
      restate.adminUrl,
    ]);
    expect(res.stderr).toBe("");
    expect(res.code).toBe(0);
    const out = JSON.parse(res.stdout) as { status: string; result: Record<string, unknown> };
    expect(out.status).toBe("done");
    expect(Object.keys(out.result)).toEqual(["sentiment", "key-points", "summary"]);
    expect(fake.requests.length).toBe(3);
  });
});
