/**
 * Bench scenarios of long inputs (issue #18), called by bench/run.ts: a 1 MiB input analysed in
 * chunks against its physical limit, and the rerun after a one-paragraph edit as a share of the
 * first run's provider requests. Returns rows in run.ts's shape; run.ts records them.
 */
import * as clients from "@restatedev/restate-sdk-clients";
import type { AnalyzeRequest } from "../services/index.js";
import { BUILTIN_ANALYSES } from "../services/analyses.js";
import { DEFAULT_CHUNK_TOKENS, splitChunks } from "../services/chunking.js";
import { DEFAULT_RETRY, type JobResult } from "../services/types.js";
import { longText } from "../test/helpers/long-text.js";
import { schemaAnswer } from "../test/helpers/request-log.js";
import { fresh, jobClient, median, type BenchStack, type RowInput } from "./common.js";

const CHUNK_LATENCY_MS = 250;
const CONCURRENCY = 16;
export async function chunkScenarios(stack: BenchStack): Promise<RowInput[]> {
  const { fake } = stack;
  const model = { name: "bench-model", baseUrl: fake.baseUrl };
  fake.setResponder((req) => schemaAnswer(req, { delayMs: CHUNK_LATENCY_MS }));
  /** Runs one chunked job; returns its wall time and the provider requests it made. */
  const run = async (text: string) => {
    const job = fresh("chunks");
    const request: AnalyzeRequest = {
      job,
      input: "bench",
      text,
      analyses: [...BUILTIN_ANALYSES],
      model,
      retry: DEFAULT_RETRY,
      chunkTokens: DEFAULT_CHUNK_TOKENS,
      concurrency: CONCURRENCY,
    };
    const before = fake.requests.length;
    const started = performance.now();
    const send = await jobClient(stack, job).analyze(
      request,
      clients.rpc.sendOpts({ idempotencyKey: job }),
    );
    const result = await stack.ingress.result<JobResult>(send);
    if (result.status !== "done") throw new Error(`chunks bench: ${JSON.stringify(result.errors)}`);
    return { wall: performance.now() - started, requests: fake.requests.length - before, result };
  };

  const walls: number[] = [];
  const shares: number[] = [];
  let chunks = 0;
  for (let i = 0; i < stack.runs; i++) {
    // Every run's chunks are new to the Chunk object: nothing is reused but what the rerun reuses.
    const text = longText(1024 * 1024).replaceAll("Paragraph ", `Paragraph r${process.pid}-${i}-`);
    chunks = splitChunks(text, DEFAULT_CHUNK_TOKENS).length;
    const first = await run(text);
    walls.push(first.wall);
    const paragraphs = text.split("\n\n");
    const middle = paragraphs.length >> 1;
    paragraphs[middle] = paragraphs[middle]!.replace(" tells of the ", " now speaks of the ");
    const rerun = await run(paragraphs.join("\n\n"));
    shares.push(rerun.requests / first.requests);
  }
  const maps = chunks * BUILTIN_ANALYSES.length;
  const limit = (CHUNK_LATENCY_MS * maps) / CONCURRENCY;
  return [
    {
      scenario: `8a. analyze 1 MiB in ${chunks} chunks × 3 analyses, chunk 250 ms, concurrency ${CONCURRENCY}: wall / (latency × map tasks / concurrency)`,
      unit: "ms",
      samples: walls,
      baseline: `limit ${Math.round(limit)} ms for ${maps} map tasks; the reduces add one latency (${CHUNK_LATENCY_MS} ms) after them`,
      ratio: median(walls) / limit,
      goal: "≤ 1.3 (the reduces' own latency adds about 0.1)",
      met: median(walls) / limit <= 1.3,
    },
    {
      scenario: "8b. rerun after a one-paragraph edit: its provider requests / the first run's",
      unit: "share",
      samples: shares,
      baseline: `first run: ${maps + BUILTIN_ANALYSES.length} requests (${maps} map + 3 reduce)`,
      ratio: median(shares),
      goal: `≤ ${((2 * 3 + 3) / (maps + 3)).toFixed(3)} (at most 2 chunks × 3 analyses + 3 reduces)`,
      met: median(shares) <= (2 * 3 + 3) / (maps + 3),
    },
  ];
}
