import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startFakeOpenAI, type FakeOpenAI } from "../helpers/fake-openai.js";
import { runCli } from "../helpers/cli.js";
import {
  startRestate,
  startServeProcess,
  type TestEndpoint,
  type TestRestate,
} from "../helpers/restate.js";

let restate: TestRestate;
let endpoint: TestEndpoint;
let fake: FakeOpenAI;

beforeAll(async () => {
  restate = await startRestate();
  fake = await startFakeOpenAI({ latencyMs: 300 });
  endpoint = await startServeProcess(restate, { OPENAI_API_KEY: "sk-test-key" }, [
    "--allow-base-url",
    fake.baseUrl,
  ]);
});

afterAll(async () => {
  await endpoint?.[Symbol.asyncDispose]();
  await restate?.stop();
  await fake?.close();
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
