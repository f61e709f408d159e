import * as clients from "@restatedev/restate-sdk-clients";
import type { AnalyzeRequest, AskRequest, BatchRequest, Job } from "../../services/index.js";
import { JOB_SERVICE } from "../../services/types.js";
import { UnavailableError } from "../errors.js";
import type { Runtime } from "../restate/runtime.js";

const SUBMIT_TIMEOUT_MS = 15_000;

export type Submission =
  | { kind: "analyze"; request: AnalyzeRequest }
  | { kind: "ask"; request: AskRequest }
  | { kind: "batch"; request: BatchRequest };

/** What Restate said about a submission: a new job, or one that already exists under this id. */
export interface Submitted {
  job: string;
  invocationId: string;
  existing: boolean;
}

/**
 * Submits a job through the typed ingress client. The job id is the idempotency key, so a retried or
 * repeated submission attaches to the job that exists instead of starting a second one.
 */
export async function submitJob(runtime: Runtime, submission: Submission): Promise<Submitted> {
  const ingress = clients.connect({ url: runtime.ingress.url, fetch: runtime.ingress.fetch });
  const key = submission.request.job;
  const client = ingress.objectSendClient<Job>({ name: JOB_SERVICE }, key);
  // A node that accepts connections but cannot reach a partition leader holds the request: give up
  // on it after a while, so the caller can try another node (the idempotency key makes that safe).
  const opts = { idempotencyKey: key, timeout: SUBMIT_TIMEOUT_MS };
  try {
    const send =
      submission.kind === "analyze"
        ? await client.analyze(submission.request, clients.rpc.sendOpts(opts))
        : submission.kind === "ask"
          ? await client.ask(submission.request, clients.rpc.sendOpts(opts))
          : await client.batch(submission.request, clients.rpc.sendOpts(opts));
    return {
      job: key,
      invocationId: send.invocationId,
      existing: send.status === "PreviouslyAccepted",
    };
  } catch (error) {
    throw new UnavailableError(
      `Restate did not accept the job at ${runtime.ingress.label}: ${(error as Error).message}`,
      { cause: error },
    );
  }
}
