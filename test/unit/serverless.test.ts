import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { functionEndpoint } from "../../src/serverless/function.js";

const dir = mkdtempSync(path.join(tmpdir(), "pagent-function-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const KEY = "publickeyv1_2G8dCQhArfvGpzPw5Vx2ALciR4xCLHfS5YaT93XjNxX9";
const tried: string[] = [];
const build = (env: Record<string, string>) =>
  functionEndpoint(env, dir, (key) => {
    tried.push(key);
  });
const names = (env: Record<string, string>) =>
  build(env).services.map((s) => (s as { name: string }).name);

describe("a serverless function's settings, from its environment", () => {
  it("hosts what PAGENT_SERVICES names (default all), with the identity keys it was given", () => {
    expect(names({ RESTATE_IDENTITY_KEYS: KEY })).toEqual(["Tasks", "Chunk", "Job"]);
    // The Chunk object asks the model for a long input's chunks: an executor, beside Tasks.
    expect(names({ RESTATE_IDENTITY_KEYS: KEY, PAGENT_SERVICES: "tasks" })).toEqual([
      "Tasks",
      "Chunk",
    ]);
    expect(names({ RESTATE_IDENTITY_KEYS: KEY, PAGENT_SERVICES: "job" })).toEqual(["Job"]);
    expect(build({ RESTATE_IDENTITY_KEYS: ` ${KEY} ,` }).identityKeys).toEqual([KEY]);
    expect(tried).toContain(KEY);
  });

  it("refuses to start unsigned unless told, naming the variable to set", () => {
    expect(() => build({})).toThrow(
      /^pagent: set RESTATE_IDENTITY_KEYS .* PAGENT_ALLOW_UNSIGNED=1/,
    );
    expect(names({ PAGENT_ALLOW_UNSIGNED: "1", PAGENT_SERVICES: "tasks" })).toEqual([
      "Tasks",
      "Chunk",
    ]);
  });

  it("names the variable, not the flag, in a bad setting", () => {
    expect(() => build({ RESTATE_IDENTITY_KEYS: KEY, PAGENT_SERVICES: "foo" })).toThrow(
      /^pagent: PAGENT_SERVICES must be one of job, tasks, all, not "foo"$/,
    );
    expect(() =>
      build({ RESTATE_IDENTITY_KEYS: KEY, PAGENT_SERVICES: "job", PAGENT_ALLOW_ROOT: dir }),
    ).toThrow(/^pagent: PAGENT_ALLOW_ROOT has no effect with PAGENT_SERVICES job/);
    expect(() => build({ RESTATE_IDENTITY_KEYS: "garbage" })).toThrow(
      /identity key "garbage" must start with publickeyv1_/,
    );
    expect(() => build({ RESTATE_IDENTITY_KEYS: KEY, PAGENT_ALLOW_BASE_URL: "not a url" })).toThrow(
      /PAGENT_ALLOW_BASE_URL "not a url" is not a URL/,
    );
  });
});
