import { describe, expect, it } from "vitest";
import { BUILTIN_ANALYSES, FREE_TEXT_SCHEMA } from "../../services/analyses.js";
import type { AnalyzeRequest, BatchRequest } from "../../services/index.js";
import { DEFAULT_RETRY, type AnalysisSpec } from "../../services/types.js";
import { UsageError } from "../../src/errors.js";
import type { Input } from "../../src/inputs.js";
import {
  parseAnalysisFlags,
  planAnalyze,
  selectAnalyses,
  type AnalyzePlanOptions,
} from "../../src/jobs/analyze-plan.js";
import { checkJobId, contentId, randomId } from "../../src/jobs/ids.js";

function good(label: string, text: string): Input {
  return { label, text, bytes: Buffer.from(text, "utf8") };
}

function bad(label: string, error: string): Input {
  return { label, error };
}

function options(overrides: Partial<AnalyzePlanOptions> = {}): AnalyzePlanOptions {
  return {
    inputs: [good("notes.txt", "The meeting went well.")],
    analyses: [...BUILTIN_ANALYSES],
    model: { name: "gpt-4o-mini" },
    retry: DEFAULT_RETRY,
    concurrency: 4,
    fresh: false,
    retentionMs: 86_400_000,
    ...overrides,
  };
}

function single(opts: AnalyzePlanOptions): AnalyzeRequest {
  const plan = planAnalyze(opts);
  expect(plan.kind).toBe("analyze");
  return plan.request as AnalyzeRequest;
}

function batch(opts: AnalyzePlanOptions): BatchRequest {
  const plan = planAnalyze(opts);
  expect(plan.kind).toBe("batch");
  return plan.request as BatchRequest;
}

function usageError(fn: () => unknown): UsageError {
  let caught: unknown;
  try {
    fn();
  } catch (error) {
    caught = error;
  }
  expect(caught).toBeInstanceOf(UsageError);
  return caught as UsageError;
}

describe("checkJobId", () => {
  it.each(["job-1", "my.job_2:x", "A", "a".repeat(128)])("accepts %j", (id) => {
    expect(checkJobId(id)).toBe(id);
  });

  it.each(["", "has space", "a/b", "../etc", "a".repeat(129), "-leading", "ünï"])(
    "rejects %j with a usage error",
    (id) => {
      expect(usageError(() => checkJobId(id)).message).toMatch(/not valid/);
    },
  );
});

describe("contentId and randomId", () => {
  it("is stable for the same parts and has the prefix", () => {
    const a = contentId("an", ["x", Buffer.from("y")]);
    expect(a).toBe(contentId("an", ["x", Buffer.from("y")]));
    expect(a).toMatch(/^an-[0-9a-f]{24}$/);
    expect(checkJobId(a)).toBe(a);
  });

  it("does not confuse parts split at different places", () => {
    expect(contentId("an", ["ab", "c"])).not.toBe(contentId("an", ["a", "bc"]));
  });

  it("random ids differ and are valid job ids", () => {
    const a = randomId("ask");
    expect(a).not.toBe(randomId("ask"));
    expect(checkJobId(a)).toBe(a);
  });
});

describe("planAnalyze ids", () => {
  it("one good input is a single analyze job with the request's settings", () => {
    const request = single(options());
    expect(request).toMatchObject({
      input: "notes.txt",
      text: "The meeting went well.",
      model: { name: "gpt-4o-mini" },
      retry: DEFAULT_RETRY,
      retentionMs: 86_400_000,
    });
    expect(request.analyses.map((a) => a.name)).toEqual(["sentiment", "key-points", "summary"]);
    expect(request.job).toMatch(/^an-[0-9a-f]{24}$/);
  });

  it("the same bytes and options give the same id, whatever the file is called", () => {
    const a = single(options()).job;
    expect(single(options()).job).toBe(a);
    expect(single(options({ inputs: [good("copy.txt", "The meeting went well.")] })).job).toBe(a);
  });

  it("different bytes give a different id", () => {
    const a = single(options()).job;
    expect(
      single(options({ inputs: [good("notes.txt", "The meeting went badly.")] })).job,
    ).not.toBe(a);
  });

  it("different analyses give a different id", () => {
    const a = single(options()).job;
    expect(single(options({ analyses: [BUILTIN_ANALYSES[0]!] })).job).not.toBe(a);
  });

  it("a different model or base URL gives a different id", () => {
    const a = single(options()).job;
    expect(single(options({ model: { name: "gpt-4o" } })).job).not.toBe(a);
    expect(
      single(options({ model: { name: "gpt-4o-mini", baseUrl: "http://127.0.0.1:11434/v1" } })).job,
    ).not.toBe(a);
  });

  it("--fresh gives a new id every time", () => {
    const a = single(options()).job;
    const f1 = single(options({ fresh: true })).job;
    const f2 = single(options({ fresh: true })).job;
    expect(f1).not.toBe(a);
    expect(f2).not.toBe(f1);
  });

  it("--id wins over the content id, even with --fresh", () => {
    expect(single(options({ id: "my-job" })).job).toBe("my-job");
    expect(single(options({ id: "my-job", fresh: true })).job).toBe("my-job");
  });

  it("an invalid --id is a usage error", () => {
    usageError(() => planAnalyze(options({ id: "has space" })));
    usageError(() => planAnalyze(options({ id: "a/b", inputs: [good("a", "x"), good("b", "y")] })));
  });
});

describe("planAnalyze batches", () => {
  const inputs = [
    good("a.txt", "alpha"),
    bad("missing.txt", "missing.txt: no such file"),
    good("b.txt", "beta"),
  ];

  it("several inputs are a batch: bad ones kept as errors, in input order", () => {
    const request = batch(options({ inputs, concurrency: 2 }));
    expect(request.concurrency).toBe(2);
    expect(request.retentionMs).toBe(86_400_000);
    expect(request.items.map((item) => item.input)).toEqual(["a.txt", "missing.txt", "b.txt"]);
    expect(request.items[1]).toEqual({
      input: "missing.txt",
      error: { message: "missing.txt: no such file" },
    });
    expect(request.job).toMatch(/^batch-[0-9a-f]{24}$/);
  });

  it("each input of a batch keeps the id it would have alone", () => {
    const request = batch(options({ inputs }));
    const alone = single(options({ inputs: [good("a.txt", "alpha")] })).job;
    const first = request.items[0]!;
    expect("request" in first && first.request.job).toBe(alone);
  });

  it("the batch id is stable, and changes with the inputs or --fresh", () => {
    const a = batch(options({ inputs })).job;
    expect(batch(options({ inputs })).job).toBe(a);
    expect(batch(options({ inputs: [inputs[0]!, inputs[2]!] })).job).not.toBe(a);
    expect(batch(options({ inputs: [inputs[2]!, inputs[1]!, inputs[0]!] })).job).not.toBe(a);
    expect(batch(options({ inputs, fresh: true })).job).not.toBe(a);
  });

  it("--id names the batch; the inputs keep their content ids", () => {
    const request = batch(options({ inputs, id: "nightly" }));
    expect(request.job).toBe("nightly");
    const first = request.items[0]!;
    expect("request" in first && first.request.job).toMatch(/^an-/);
  });
});

describe("parseAnalysisFlags", () => {
  it("parses NAME=instruction, trimmed, with the free-text schema", () => {
    expect(parseAnalysisFlags(["tone = Describe the tone.", "q=a=b"])).toEqual([
      { name: "tone", instruction: "Describe the tone.", schema: FREE_TEXT_SCHEMA },
      { name: "q", instruction: "a=b", schema: FREE_TEXT_SCHEMA },
    ]);
  });

  it.each(["tone", "=Describe", "tone=", "tone=   ", "1tone=x", "to ne=x", "a/b=x"])(
    "rejects %j with a usage error showing the value",
    (value) => {
      expect(usageError(() => parseAnalysisFlags([value])).message).toContain(value);
    },
  );
});

describe("selectAnalyses", () => {
  const names = (specs: AnalysisSpec[]) => specs.map((s) => s.name);
  const entitiesSchema = {
    type: "object",
    properties: { entities: { type: "array", items: { type: "string" } } },
    required: ["entities"],
  };
  const file = {
    analyses: {
      entities: { instruction: "List the people.", schema: entitiesSchema },
      tone: { instruction: "Describe the tone." },
    },
  };

  it("by default runs the built-ins, then the config file's, then the flags'", () => {
    const flags = parseAnalysisFlags(["risks=List the risks."]);
    expect(names(selectAnalyses(file, flags, undefined))).toEqual([
      "sentiment",
      "key-points",
      "summary",
      "entities",
      "tone",
      "risks",
    ]);
    expect(names(selectAnalyses({}, [], []))).toEqual(["sentiment", "key-points", "summary"]);
  });

  it("a config analysis keeps its schema; one without gets the free-text schema", () => {
    const all = selectAnalyses(file, [], undefined);
    expect(all.find((a) => a.name === "entities")).toEqual({
      name: "entities",
      instruction: "List the people.",
      schema: entitiesSchema,
    });
    expect(all.find((a) => a.name === "tone")?.schema).toEqual(FREE_TEXT_SCHEMA);
  });

  it("--only picks in the order given, once each", () => {
    expect(
      names(selectAnalyses(file, [], ["summary", "entities", "sentiment", "summary"])),
    ).toEqual(["summary", "entities", "sentiment"]);
  });

  it("a flag analysis replaces a config one of the same name", () => {
    const [tone] = selectAnalyses(file, parseAnalysisFlags(["tone=Be brief."]), ["tone"]);
    expect(tone?.instruction).toBe("Be brief.");
  });

  it("an unknown --only name is a usage error listing what is available", () => {
    const error = usageError(() => selectAnalyses(file, [], ["summary", "sentimnet"]));
    expect(error.message).toContain("sentimnet");
    for (const name of ["sentiment", "key-points", "summary", "entities", "tone"]) {
      expect(error.message).toContain(name);
    }
  });
});

describe("planAnalyze: long inputs", () => {
  const long = good("long.txt", "A sentence of a long text. ".repeat(2000));
  it("a text that fits is submitted exactly as without chunking: no chunk fields, the same id", () => {
    const request = single(options({ chunkTokens: 8000 }));
    expect(request).not.toHaveProperty("chunkTokens");
    expect(request).not.toHaveProperty("concurrency");
    expect(request.job).toBe(single(options()).job);
  });

  it("a longer text carries its chunk size and concurrency, and its chunk size is part of its id", () => {
    const request = single(options({ inputs: [long], chunkTokens: 2000, concurrency: 6 }));
    expect(request).toMatchObject({ chunkTokens: 2000, concurrency: 6 });
    const other = single(options({ inputs: [long], chunkTokens: 3000, concurrency: 6 }));
    expect(other.job).not.toBe(request.job);
    // Concurrency is a bound, not part of the answer.
    expect(single(options({ inputs: [long], chunkTokens: 2000, concurrency: 2 })).job).toBe(
      request.job,
    );
  });
});
