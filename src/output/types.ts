import type { BatchResult, JobResult } from "../../services/types.js";
import type { EventBody } from "./events.js";

export type FinalResult = JobResult | BatchResult;

/**
 * What a command other than a job run shows (`jobs`, `status`, `server status`, ...), in every
 * output mode at once; the reporter picks the one the user asked for.
 */
export interface View {
  /** `--json`: the one document. */
  json: unknown;
  /** `--ndjson`: one object a line (a job a line for `jobs`); by default the document on one line. */
  ndjson?: unknown[];
  /** `--quiet`: the essential value only, one a line (ids for `jobs`, the status word for `status`). */
  quiet: string[];
  /** People's text for stdout, each line ending in a newline ("" for nothing). */
  human: string;
}

/** Everything a command shows goes through one of these: results on stdout, progress on stderr. */
export interface Reporter {
  /** A job event, as it happens. */
  event(job: string, body: EventBody): void;
  /** A note for people (never for machines): which job, where to look. */
  note(line: string): void;
  /** The final result of a job run. */
  result(result: FinalResult): void;
  /** The result of any other command. */
  show(view: View): void;
  /** Bad inputs refused before submission, shown in input order with the results. */
  close(): void;
}

export interface Streams {
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
}
