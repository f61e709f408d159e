import type { OutputMode } from "../config.js";
import { chunkCounts, makeEvent, type EventBody } from "./events.js";
import { HumanReporter } from "./human.js";
import type { Terminal } from "./terminal.js";
import type { FinalResult, Reporter, Streams, View } from "./types.js";

/** `--json` documents: one compact JSON document, for every command (SPEC: "Output of every command"). */
function jsonText(value: unknown): string {
  return `${JSON.stringify(value)}\n`;
}

/** `--ndjson` lines: one compact object each. */
function ndjsonText(values: unknown[]): string {
  return values.map((value) => `${JSON.stringify(value)}\n`).join("");
}

class NdjsonReporter implements Reporter {
  constructor(private readonly streams: Streams) {}
  event(job: string, body: EventBody): void {
    this.streams.stdout.write(ndjsonText([makeEvent(job, body)]));
  }
  note(): void {}
  show(view: View): void {
    this.streams.stdout.write(ndjsonText(view.ndjson ?? [view.json]));
  }
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
            ...chunkCounts(result),
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
    this.streams.stdout.write(jsonText(jsonOf(result)));
  }
  show(view: View): void {
    this.streams.stdout.write(jsonText(view.json));
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
