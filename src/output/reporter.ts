import type { BadInputResult, BatchResult, JobResult } from "../../services/types.js";
import type { OutputMode } from "../config.js";
import { makeEvent, type EventBody } from "./events.js";
import { HumanReporter } from "./human.js";
import type { Terminal } from "./terminal.js";

export type FinalResult = JobResult | BatchResult;

/** Everything a command shows goes through one of these: results on stdout, progress on stderr. */
export interface Reporter {
  /** A job event, as it happens. */
  event(job: string, body: EventBody): void;
  /** A note for people (never for machines): which job, where to look. */
  note(line: string): void;
  /** The final result. */
  result(result: FinalResult): void;
  /** Bad inputs refused before submission, shown in input order with the results. */
  close(): void;
}

export interface Streams {
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
}

class NdjsonReporter implements Reporter {
  constructor(private readonly streams: Streams) {}
  event(job: string, body: EventBody): void {
    this.streams.stdout.write(`${JSON.stringify(makeEvent(job, body))}\n`);
  }
  note(): void {}
  result(result: FinalResult): void {
    const cost = result.cost !== undefined ? { cost: result.cost } : {};
    const body: EventBody =
      result.kind === "batch"
        ? {
            type: "job.done",
            status: result.status,
            result: result.items,
            usage: result.usage,
            ...cost,
          }
        : {
            type: "job.done",
            input: result.input,
            status: result.status,
            result: result.result,
            usage: result.usage,
            ...cost,
            errors: result.errors,
          };
    this.event(result.job, body);
  }
  close(): void {}
}

/** `--json`: one object (or an array for a batch) when done, nothing else. */
export function jsonOf(result: FinalResult): unknown {
  return result.kind === "batch" ? result.items : result;
}

class JsonReporter implements Reporter {
  constructor(private readonly streams: Streams) {}
  event(): void {}
  note(): void {}
  result(result: FinalResult): void {
    this.streams.stdout.write(`${JSON.stringify(jsonOf(result), null, 2)}\n`);
  }
  close(): void {}
}

export function createReporter(opts: {
  mode: OutputMode;
  quiet: boolean;
  terminal: Terminal;
  streams: Streams;
}): Reporter {
  if (opts.mode === "ndjson") return new NdjsonReporter(opts.streams);
  if (opts.mode === "json") return new JsonReporter(opts.streams);
  return new HumanReporter(opts.streams, opts.terminal, opts.quiet);
}

export type { BadInputResult };
