import type { AnalyzeRequest, BatchItem, BatchRequest } from "../../services/index.js";
import type { JobBounds } from "../../services/job/contract.js";
import { BUILTIN_ANALYSES, FREE_TEXT_SCHEMA } from "../../services/analyses.js";
import { estimateTokens } from "../../services/chunking.js";
import type { AnalysisSpec, ModelSpec, RetrySettings } from "../../services/types.js";
import type { ConfigFile } from "../config.js";
import { UsageError } from "../errors.js";
import type { Input } from "../inputs.js";
import { checkJobId, contentId, randomId } from "./ids.js";
import type { Submission } from "./client.js";

/** `--analysis NAME="instruction"` entries, parsed. */
export function parseAnalysisFlags(values: string[]): AnalysisSpec[] {
  return values.map((value) => {
    const eq = value.indexOf("=");
    const name = eq > 0 ? value.slice(0, eq).trim() : "";
    const instruction = eq > 0 ? value.slice(eq + 1).trim() : "";
    if (!/^[A-Za-z][A-Za-z0-9_-]{0,39}$/.test(name) || !instruction) {
      throw new UsageError(
        `--analysis takes NAME="instruction" (NAME: letters, digits, - or _), not "${value}"`,
      );
    }
    return { name, instruction, schema: FREE_TEXT_SCHEMA };
  });
}

/** The analyses to run: built-ins, then the config file's, then the flags'; `--only` picks among them. */
export function selectAnalyses(
  file: ConfigFile,
  flagAnalyses: AnalysisSpec[],
  only: string[] | undefined,
): AnalysisSpec[] {
  const all = new Map<string, AnalysisSpec>(BUILTIN_ANALYSES.map((a) => [a.name, a]));
  for (const [name, def] of Object.entries(file.analyses ?? {})) {
    all.set(name, {
      name,
      instruction: def.instruction,
      schema: def.schema ?? FREE_TEXT_SCHEMA,
      ...(def.reduce !== undefined ? { reduce: def.reduce } : {}),
    });
  }
  for (const analysis of flagAnalyses) all.set(analysis.name, analysis);
  if (!only || only.length === 0) return [...all.values()];
  const unknown = only.filter((name) => !all.has(name));
  if (unknown.length > 0) {
    throw new UsageError(
      `unknown analysis ${unknown.join(", ")}; available: ${[...all.keys()].join(", ")}`,
    );
  }
  return [...new Set(only)].map((name) => all.get(name)!);
}

export interface AnalyzePlanOptions {
  inputs: Input[];
  analyses: AnalysisSpec[];
  model: ModelSpec;
  retry: RetrySettings;
  concurrency: number;
  fresh: boolean;
  id?: string;
  retentionMs: number;
  /** Limits, time limit, budget and price; never part of a job's id. */
  bounds?: JobBounds;
  /** An input longer than this many estimated tokens is analysed in chunks (default: never). */
  chunkTokens?: number;
}

/** The chunk size of a long input, part of its job's id: another size gives other answers. */
function chunking(text: string, opts: AnalyzePlanOptions): { chunkTokens?: number } {
  return opts.chunkTokens !== undefined && estimateTokens(text) > opts.chunkTokens
    ? { chunkTokens: opts.chunkTokens }
    : {};
}

function jobIdFor(
  bytes: Buffer,
  opts: AnalyzePlanOptions,
  nonce: string,
  chunked: { chunkTokens?: number },
): string {
  return contentId("an", [
    "analyze",
    JSON.stringify({ analyses: opts.analyses, model: opts.model, ...chunked }),
    nonce,
    bytes,
  ]);
}

/** One input is one job; several are a batch whose children keep their own content-addressed ids. */
export function planAnalyze(opts: AnalyzePlanOptions): Submission {
  const nonce = opts.fresh ? randomId("fresh") : "";
  const requests = opts.inputs.map((input): BatchItem => {
    if ("error" in input) return { input: input.label, error: { message: input.error } };
    const chunked = chunking(input.text, opts);
    const request: AnalyzeRequest = {
      job: jobIdFor(input.bytes, opts, nonce, chunked),
      input: input.label,
      text: input.text,
      analyses: opts.analyses,
      model: opts.model,
      retry: opts.retry,
      retentionMs: opts.retentionMs,
      ...opts.bounds,
      // Only a long input carries these: one that fits is submitted exactly as before chunking.
      ...(chunked.chunkTokens !== undefined ? { ...chunked, concurrency: opts.concurrency } : {}),
    };
    return { input: input.label, request };
  });
  const only = requests[0];
  if (requests.length === 1 && only && "request" in only) {
    if (opts.id) only.request.job = checkJobId(opts.id);
    return { kind: "analyze", request: only.request };
  }
  const batch: BatchRequest = {
    job: opts.id
      ? checkJobId(opts.id)
      : // The inputs' names are part of the batch (its result is reported under them), so the
        // same bytes under other names are another batch; each input's job is still shared.
        contentId("batch", [
          nonce,
          ...requests.map((r) =>
            "request" in r ? JSON.stringify([r.request.job, r.input]) : `bad:${r.input}`,
          ),
        ]),
    items: requests,
    concurrency: opts.concurrency,
    retentionMs: opts.retentionMs,
    // The batch's time limit and budget hold for all its inputs together; it hands each input's job
    // the deadline and what is left of the budget when it starts it.
    ...(opts.bounds?.timeoutMs !== undefined ? { timeoutMs: opts.bounds.timeoutMs } : {}),
    ...(opts.bounds?.maxTokensTotal !== undefined
      ? { maxTokensTotal: opts.bounds.maxTokensTotal }
      : {}),
  };
  return { kind: "batch", request: batch };
}
