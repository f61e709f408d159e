import { Chalk, type ChalkInstance } from "chalk";
import ora, { type Ora } from "ora";
import {
  LOCAL_MODEL_LABEL,
  type BatchResult,
  type JobResult,
  type Usage,
} from "../../services/types.js";
import type { EventBody } from "./events.js";
import type { FinalResult, Reporter, Streams } from "./reporter.js";
import type { Terminal } from "./terminal.js";
import { printableName } from "../inputs.js";

interface Line {
  name: string;
  text: string;
  state: "queued" | "running" | "retrying" | "done" | "failed";
}

export function formatMs(ms: number | undefined): string {
  if (ms === undefined) return "";
  return ms < 1000 ? `${ms}ms` : `${(ms / 1000).toFixed(1)}s`;
}

function formatUsage(usage: Usage | undefined): string {
  return usage && usage.total > 0 ? `${usage.total} tokens` : "";
}

/** US dollars with four decimals, or enough significant digits to show a tiny cost at all. */
export function formatCost(usd: number): string {
  if (usd === 0 || usd >= 0.0001) return `$${usd.toFixed(4)}`;
  return `$${usd.toPrecision(2)}`;
}

/** The closing line of a run: `job ID · status · time · tokens · $cost`. */
export function summaryLine(job: string, result: BatchResult | JobResult): string {
  return [
    `job ${job}`,
    result.status,
    formatMs(result.ms),
    formatUsage(result.usage),
    result.cost !== undefined ? formatCost(result.cost) : "",
  ]
    .filter(Boolean)
    .join(" · ");
}

function short(value: unknown, max = 80): string {
  const text = typeof value === "string" ? value : JSON.stringify(value);
  const flat = (text ?? "").replace(/\s+/g, " ");
  return flat.length > max ? `${flat.slice(0, max - 1)}…` : flat;
}

/** Describes an event as the words of its progress line. */
export function describeEvent(body: EventBody): Pick<Line, "text" | "state"> | undefined {
  switch (body.type) {
    case "task.queued":
      return {
        state: "queued",
        text: body.args !== undefined ? `queued ${short(body.args, 60)}` : "queued",
      };
    case "task.started":
      return {
        state: "running",
        text: body.attempt > 1 ? `running (attempt ${body.attempt})` : "running",
      };
    case "task.retrying":
      return {
        state: "retrying",
        text: `retrying ${body.attempt}${body.maxAttempts ? `/${body.maxAttempts}` : ""}: ${body.error}`,
      };
    case "task.done":
      return {
        state: "done",
        text: ["done", formatMs(body.ms), formatUsage(body.usage)].filter(Boolean).join(" · "),
      };
    case "task.failed":
      return { state: "failed", text: `failed: ${body.error}` };
    default:
      return undefined;
  }
}

/** People's output: live task lines on stderr while the job runs, a readable result on stdout. */
export class HumanReporter implements Reporter {
  private readonly chalk: ChalkInstance;
  /** Results may go to a file while progress goes to the terminal: each stream gets its own colour. */
  private readonly out: ChalkInstance;
  private readonly lines = new Map<string, Line>();
  private readonly spinner: Ora | undefined;
  private batchDone = 0;

  constructor(
    private readonly streams: Streams,
    private readonly terminal: Terminal,
    private readonly quiet: boolean,
  ) {
    this.chalk = new Chalk({ level: terminal.color ? 1 : 0 });
    this.out = new Chalk({ level: terminal.stdoutColor ? 1 : 0 });
    if (terminal.live && !quiet) {
      this.spinner = ora({
        stream: streams.stderr,
        color: "cyan",
        isEnabled: true,
        discardStdin: false,
      });
    }
  }

  event(job: string, body: EventBody): void {
    if (this.quiet) return;
    if (body.type === "job.done") {
      this.batchDone++;
      for (const key of [...this.lines.keys()])
        if (key.startsWith(`${job}/`) && this.lines.size > 12) this.lines.delete(key);
      return;
    }
    if (!("task" in body)) return;
    const described = describeEvent(body);
    if (!described) return;
    const key = `${job}/${body.task}`;
    const line = { name: body.name, ...described };
    this.lines.set(key, line);
    if (this.spinner) {
      this.render();
    } else if (body.type !== "task.queued") {
      this.streams.stderr.write(`${this.paint(line)}\n`);
    }
  }

  private icon(state: Line["state"]): string {
    const c = this.chalk;
    switch (state) {
      case "queued":
        return c.dim("·");
      case "running":
        return c.cyan("›");
      case "retrying":
        return c.yellow("↻");
      case "done":
        return c.green("✔");
      case "failed":
        return c.red("✖");
    }
  }

  private paint(line: Line): string {
    const name = line.name.padEnd(16);
    const text =
      line.state === "failed"
        ? this.chalk.red(line.text)
        : line.state === "retrying"
          ? this.chalk.yellow(line.text)
          : line.text;
    return `${this.icon(line.state)} ${this.chalk.bold(name)} ${text}`;
  }

  private render(): void {
    if (!this.spinner) return;
    const lines = [...this.lines.values()].map((l) => this.paint(l));
    const head = this.batchDone > 0 ? `${this.batchDone} job(s) done` : "working";
    this.spinner.text = [head, ...lines].join("\n");
    if (!this.spinner.isSpinning) this.spinner.start();
  }

  note(line: string): void {
    if (this.quiet) return;
    this.stopSpinner();
    this.streams.stderr.write(`${this.chalk.dim(line)}\n`);
  }

  private stopSpinner(): void {
    if (this.spinner?.isSpinning) {
      this.spinner.stop();
      // Leave the final state of each task on screen.
      for (const line of this.lines.values()) this.streams.stderr.write(`${this.paint(line)}\n`);
    }
  }

  result(result: FinalResult): void {
    this.stopSpinner();
    this.streams.stdout.write(
      result.kind === "batch" ? this.batchText(result) : this.jobText(result),
    );
  }

  close(): void {
    this.stopSpinner();
  }

  private jobText(result: JobResult): string {
    const c = this.out;
    const out: string[] = [];
    if (result.model.offline) out.push(c.dim(`[model: ${LOCAL_MODEL_LABEL}]`));
    if (result.kind === "ask") {
      const answer = (result.result as { answer: string | null }).answer;
      if (answer !== null) out.push(answer);
    } else {
      for (const [name, value] of Object.entries(result.result as Record<string, unknown>)) {
        out.push(`${c.bold(name)}:`, indent(renderAnalysis(name, value)));
      }
    }
    for (const [name, error] of Object.entries(result.errors)) {
      out.push(`${c.red.bold(name)}: ${c.red(`failed: ${error.message}`)}`);
    }
    return `${out.join("\n")}\n`;
  }

  private batchText(result: BatchResult): string {
    const c = this.out;
    return result.items
      .map((item) =>
        item.job === null
          ? `${c.bold(`== ${printableName(item.input)}`)}\n${
              item.notRun
                ? c.yellow(item.errors.input.message)
                : c.red(`refused: ${item.errors.input.message}`)
            }\n`
          : `${c.bold(`== ${printableName(item.input)}`)}\n${this.jobText(item)}`,
      )
      .join("\n");
  }
}

function indent(text: string): string {
  return text
    .split("\n")
    .map((l) => `  ${l}`)
    .join("\n");
}

/** Built-in analyses read as sentences; anything else as indented JSON. */
export function renderAnalysis(name: string, value: unknown): string {
  const v = value as Record<string, unknown>;
  if (name === "sentiment" && typeof v?.label === "string") {
    return `${v.label} (${Number(v.score).toFixed(2)}): ${String(v.reason)}`;
  }
  if (name === "key-points" && Array.isArray(v?.points))
    return v.points.map((p) => `• ${String(p)}`).join("\n");
  if (name === "summary" && typeof v?.summary === "string") return v.summary;
  if (v && typeof v === "object" && Object.keys(v).length === 1 && typeof v.result === "string")
    return v.result;
  return JSON.stringify(value, null, 2);
}

export { formatUsage };
