import type { Command } from "commander";
import { DEFAULT_CHUNK_TOKENS } from "../../services/chunking.js";
import { parsePositiveDuration, parsePositiveInt } from "../config.js";
import { commandContext, type App } from "../context.js";
import { EXIT, UsageError } from "../errors.js";
import { readInputs } from "../inputs.js";
import { parseAnalysisFlags, planAnalyze, selectAnalyses } from "../jobs/analyze-plan.js";
import { checkSubmissionSize, runSubmission } from "../jobs/run.js";
import { askedBy, jobBounds, modelSpec, retrySettings, stderrWarning } from "./shared.js";

/**
 * 16 MiB: long inputs are analysed in chunks, so the bound is what one job request can carry to
 * Restate (32 MiB per request and per journal entry in restate-server 1.7: `ingress.request-size-limit`,
 * `worker.invoker.message-size-limit`) with room for JSON escapes; checkSubmissionSize checks the rest.
 */
export const DEFAULT_MAX_BYTES = 16 * 1024 * 1024;

interface AnalyzeFlags {
  text?: string;
  only?: string;
  analysis?: string[];
  concurrency?: string;
  maxBytes?: string;
  chunkTokens?: string;
  inputTimeout?: string;
  fresh?: boolean;
  id?: string;
}

export function registerAnalyze(program: Command, app: App): void {
  program
    .command("analyze")
    .description("run the analyses of each input in parallel (files, - for stdin, or --text)")
    .argument("[files...]", "text files to analyze; - reads stdin")
    .option("--text <text>", "analyze this text instead of files")
    .option("--only <names>", "comma-separated analyses to run (default: all)")
    .option(
      "--analysis <name=instruction>",
      "add a custom analysis (repeatable)",
      (v: string, all: string[] | undefined) => [...(all ?? []), v],
    )
    .option(
      "--concurrency <n>",
      "jobs in flight at once for several inputs, and chunk tasks at once for a long input (default 4)",
    )
    .option("--max-bytes <n>", `refuse inputs larger than this (default ${DEFAULT_MAX_BYTES})`)
    .option(
      "--chunk-tokens <n>",
      `split an input longer than this many estimated tokens into chunks (default ${DEFAULT_CHUNK_TOKENS}; env PAGENT_CHUNK_TOKENS)`,
    )
    .option(
      "--input-timeout <duration>",
      "how long a pipe may wait for a writer, or stay silent, before it is refused (default 30s)",
    )
    .option("--fresh", "start a new job even if this exact one ran before")
    .option("--id <key>", "use this job id instead of the content-addressed one")
    .action(async (files: string[], flags: AnalyzeFlags, command: Command) => {
      const ctx = commandContext(app, command.optsWithGlobals());
      const { config } = ctx;
      const model = modelSpec(config);
      const analyses = selectAnalyses(
        config.file,
        parseAnalysisFlags(flags.analysis ?? []),
        flags.only
          ?.split(",")
          .map((s) => s.trim())
          .filter(Boolean),
      );
      const concurrency = flags.concurrency
        ? parsePositiveInt(flags.concurrency, "--concurrency")
        : (config.file.concurrency ?? 4);
      const maxBytes = flags.maxBytes
        ? parsePositiveInt(flags.maxBytes, "--max-bytes")
        : (config.file.maxBytes ?? DEFAULT_MAX_BYTES);
      const inputs = await readInputs({
        files,
        text: flags.text,
        stdin: app.stdin,
        maxBytes,
        signal: app.signal,
        ...(flags.inputTimeout
          ? { inputTimeoutMs: parsePositiveDuration(flags.inputTimeout, "--input-timeout") }
          : {}),
      });
      const bad = inputs.filter((i) => "error" in i);
      // A lone bad input is a usage error; in a batch the good inputs still run.
      if (bad.length === inputs.length) {
        throw new UsageError(bad.map((b) => ("error" in b ? b.error : "")).join("; "));
      }
      for (const input of bad) if ("error" in input) app.stderr.write(`pagent: ${input.error}\n`);
      const submission = planAnalyze({
        inputs,
        analyses,
        model,
        retry: retrySettings(config),
        concurrency,
        fresh: flags.fresh ?? false,
        id: flags.id,
        retentionMs: config.retentionMs,
        bounds: jobBounds(config, model),
        chunkTokens: config.chunkTokens,
      });
      checkSubmissionSize(submission);
      const runtime = await ctx.openRuntime(askedBy(submission));
      const code = await runSubmission(
        runtime,
        submission,
        ctx.reporter,
        app.signal,
        stderrWarning(app),
      );
      app.finish(bad.length > 0 && code === EXIT.ok ? EXIT.partial : code);
    });
}
