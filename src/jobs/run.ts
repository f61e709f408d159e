import * as clients from "@restatedev/restate-sdk-clients";
import {
  PROVIDER_UNAVAILABLE,
  type BadInputResult,
  type BatchResult,
  type JobResult,
} from "../../services/types.js";
import { EXIT, InterruptedError, UsageError, type ExitCode } from "../errors.js";
import type { Reporter } from "../output/types.js";
import { summaryLine } from "../output/human.js";
import { retryWhileUnavailable } from "../restate/retry.js";
import type { Runtime } from "../restate/runtime.js";
import { submitJob, type Submission, type Submitted } from "./client.js";
import { watchJob } from "./watch.js";

/** Every task of the job failed because the provider could not be reached (or only answered 5xx). */
function providerUnavailable(result: JobResult | BatchResult | BadInputResult): boolean {
  if (result.status !== "failed") return false;
  if ("items" in result) return result.items.every(providerUnavailable);
  const errors: { code?: number }[] = Object.values(result.errors);
  return errors.length > 0 && errors.every((e) => e.code === PROVIDER_UNAVAILABLE);
}

export function exitCodeFor(result: JobResult | BatchResult): ExitCode {
  if (providerUnavailable(result)) return EXIT.unavailable;
  switch (result.status) {
    case "done":
      return EXIT.ok;
    case "partial":
      return EXIT.partial;
    default:
      return EXIT.jobFailed;
  }
}

/**
 * Attaches to the job's invocation through the ingress; it answers the moment the job ends, so the
 * result is shown without waiting for the next progress poll. Failures here only cost that shortcut.
 */
function invocationFinished(runtime: Runtime, invocationId: string): Promise<unknown> {
  const ingress = clients.connect({ url: runtime.ingress.url, fetch: runtime.ingress.fetch });
  return ingress
    .result({ invocationId, status: "Accepted", attachable: true })
    .catch(() => new Promise(() => undefined));
}

export interface FollowOptions {
  signal: AbortSignal;
  invocationId?: string;
  /** The input's name in this command: a content-addressed job may have run under another name. */
  input?: string;
  /** Where a warning about what holds the job up goes (stderr); default: the reporter's notes. */
  warn?: (line: string) => void;
}

/** Follows a job to its end and reports it; Ctrl-C stops the watching, never the job. */
export async function followJob(
  runtime: Runtime,
  job: string,
  reporter: Reporter,
  options: FollowOptions,
): Promise<ExitCode> {
  let result: JobResult | BatchResult;
  try {
    result = await watchJob(runtime, job, {
      onEvent: (id, event) => reporter.event(id, event),
      signal: options.signal,
      // Only pagent's own endpoint can be restarted; a connected server's endpoint is the user's.
      ...(runtime.mode === "embedded" ? { revive: () => runtime.recover() } : {}),
      ...(runtime.diskTrouble ? { diskTrouble: () => runtime.diskTrouble!() } : {}),
      warn: options.warn ?? ((line) => reporter.note(`pagent: ${line}`)),
      ...(options.invocationId
        ? { finished: invocationFinished(runtime, options.invocationId) }
        : {}),
    });
  } catch (error) {
    if (options.signal.aborted) {
      reporter.close();
      throw new InterruptedError(
        runtime.mode === "ephemeral"
          ? `interrupted; job ${job} ran on a private --ephemeral server and stopped with it`
          : `stopped watching; job ${job} goes on. Follow it with: pagent attach ${job}`,
      );
    }
    throw error;
  }
  if (options.input !== undefined && result.kind !== "batch")
    result = { ...result, input: options.input };
  reporter.result(result);
  reporter.note(summaryLine(job, result));
  const code = exitCodeFor(result);
  if (code === EXIT.unavailable)
    reporter.note(`the model provider is unavailable; see the errors above`);
  if (runtime.mode !== "ephemeral") {
    reporter.note(`Restate UI: ${runtime.ui(options.invocationId)}`);
  }
  reporter.close();
  return code;
}

/**
 * Restate's ingress refuses a request body over `ingress.request-size-limit` (32 MiB by default in
 * restate-server 1.7, see `restate-server --dump-config`) by dropping the connection, which reads
 * as "fetch failed". A batch carries every input's text, so its sum counts.
 */
export const RESTATE_REQUEST_LIMIT = 32 * 1024 * 1024;

/** Refuses, before anything is started or submitted, a job Restate would not accept. */
export function checkSubmissionSize(submission: Submission): void {
  const bytes = Buffer.byteLength(JSON.stringify(submission.request));
  if (bytes <= RESTATE_REQUEST_LIMIT) return;
  const mib = (n: number) => `${(n / 1024 / 1024).toFixed(1)} MiB`;
  throw new UsageError(
    `the job is ${mib(bytes)} as a request, over Restate's limit of ${mib(RESTATE_REQUEST_LIMIT)} per request (ingress request-size-limit); lower --max-bytes or split the inputs over several commands`,
  );
}

/**
 * Submits through the current node; if it is down, recovers (restarts the embedded server, or moves to
 * the next node of a cluster) and submits again. The job id is the idempotency key, so a retry after an
 * ambiguous failure attaches to the job instead of starting a second one.
 */
function submitWithFailover(runtime: Runtime, submission: Submission): Promise<Submitted> {
  return retryWhileUnavailable(
    () => submitJob(runtime, submission),
    { attempts: 3 },
    // Without a server there is nothing to submit to: a failed recovery is the error to show.
    { beforeRetry: () => runtime.recover() },
  );
}

/** Submits (or re-attaches to) a job, then follows it. */
export async function runSubmission(
  runtime: Runtime,
  submission: Submission,
  reporter: Reporter,
  signal: AbortSignal,
  warn?: (line: string) => void,
): Promise<ExitCode> {
  // Ctrl-C while the inputs were read or the server started: submit nothing.
  if (signal.aborted) throw new InterruptedError("interrupted; nothing was submitted");
  const submitted = await submitWithFailover(runtime, submission);
  const request = submission.request;
  const input = "input" in request ? request.input : `${request.items.length} inputs`;
  const inputs = "items" in request ? { inputs: request.items.length } : {};
  reporter.event(
    submitted.job,
    submitted.existing
      ? { type: "job.attached", kind: submission.kind, input, ...inputs }
      : {
          type: "job.submitted",
          kind: submission.kind,
          input,
          ...inputs,
          model:
            "model" in request
              ? request.model.name
              : ((
                  request.items.find((i) => "request" in i) as
                    { request?: { model: { name: string } } } | undefined
                )?.request?.model.name ?? ""),
        },
  );
  if (submitted.existing)
    reporter.note(`job ${submitted.job} exists; attaching to it (use --fresh for a new run)`);
  return followJob(runtime, submitted.job, reporter, {
    signal,
    invocationId: submitted.invocationId,
    ...(submission.kind !== "batch" ? { input } : {}),
    ...(warn ? { warn } : {}),
  });
}
