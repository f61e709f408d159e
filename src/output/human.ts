import { Chalk, type ChalkInstance } from "chalk";
import {
  LOCAL_MODEL_LABEL,
  type BatchResult,
  type JobResult,
  type Usage,
} from "../../services/types.js";
import type { EventBody } from "./events.js";
import type { FinalResult, Reporter, Streams, View } from "./types.js";
import { formatDuration } from "../../services/duration.js";
import type { Terminal } from "./terminal.js";
import { printableName } from "../inputs.js";
import { LazySpinner } from "./spinner.js";

interface Line {
  /** The batch input the task belongs to. */
  input?: string;
  name: string;
  text: string;
  state: "queued" | "running" | "retrying" | "done" | "failed";
  /** "2/5" while retrying. */
  attempt?: string;
  /** A long input's analysis: its map tasks, shown on its reduce's line. */
  chunks?: ChunkProgress;
}

/** The map tasks of one analysis of a long input, by chunk index. */
interface ChunkProgress {
  states: Map<number, Line["state"]>;
  reused: number;
  /** Non-live output: the line saying every chunk is done was written (as its reduce started). */
  reported?: boolean;
}

/** "chunks 12/40 done, 3 reused, 1 failed", and how many chunks are in each state. */
function mapText(progress: ChunkProgress): { text: string; count: (s: Line["state"]) => number } {
  const states = [...progress.states.values()];
  const count = (state: Line["state"]) => states.filter((s) => s === state).length;
  const text = [
    `chunks ${count("done")}/${states.length} done`,
    progress.reused > 0 ? `${progress.reused} reused` : "",
    count("failed") > 0 ? `${count("failed")} failed` : "",
  ]
    .filter(Boolean)
    .join(", ");
  return { text, count };
}

/** A chunked analysis's line: its chunks' progress, then its reduce; its state from both. */
function withChunks(line: Line): Pick<Line, "state" | "text"> {
  if (!line.chunks) return line;
  const { text, count } = mapText(line.chunks);
  const state: Line["state"] =
    line.state !== "queued"
      ? line.state
      : count("failed") > 0
        ? "failed"
        : count("retrying") > 0
          ? "retrying"
          : count("running") + count("done") > 0
            ? "running"
            : "queued";
  return { state, text: `${text} · reduce ${line.text}` };
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
    formatDuration(result.ms),
    formatUsage(result.usage),
    // No tokens, no cost: `$0.0000` would only say nothing was asked.
    result.cost !== undefined && result.usage.total > 0 ? formatCost(result.cost) : "",
    result.kind !== "batch" && result.chunks !== undefined
      ? `${result.chunks} chunks, ${result.reusedChunks ?? 0} chunk results reused`
      : "",
  ]
    .filter(Boolean)
    .join(" · ");
}

export function short(value: unknown, max = 80): string {
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
        text: ["done", formatDuration(body.ms), formatUsage(body.usage)]
          .filter(Boolean)
          .join(" · "),
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
  /** A tool call's arguments, from its task.queued: two `http_get` rows must not look the same. */
  private readonly args = new Map<string, string>();
  private readonly startedLines = new Map<string, Line>();
  /** Each chunked analysis's map tasks, by the key of its line. */
  private readonly chunkProgress = new Map<string, ChunkProgress>();
  /** A batch's number of inputs, from its job.submitted / job.attached. */
  private totalInputs: number | undefined;
  /** A batch's inputs in the order they started, and whether each has its own `job.done` yet. */
  private readonly inputs = new Map<string, boolean>();
  /** Each input's task lines (by the same keys as `lines`), so one input's row costs its own tasks. */
  private readonly inputTasks = new Map<string, Map<string, Line>>();
  private renderTimer: NodeJS.Timeout | undefined;
  private renderedAt = 0;
  private readonly spinner: LazySpinner | undefined;

  constructor(
    private readonly streams: Streams,
    private readonly terminal: Terminal,
    private readonly quiet: boolean,
  ) {
    this.chalk = new Chalk({ level: terminal.color ? 1 : 0 });
    this.out = new Chalk({ level: terminal.stdoutColor ? 1 : 0 });
    // A terminal that reports no width (a pty opened without a size, as `script` does) cannot be
    // redrawn: ora would count every line as endless and erase without end. Lines instead.
    const width = (streams.stderr as { columns?: number }).columns;
    if (terminal.live && !quiet && width !== 0) {
      this.spinner = new LazySpinner({
        stream: streams.stderr,
        color: "cyan",
        isEnabled: true,
        discardStdin: false,
      });
    }
  }

  event(job: string, body: EventBody): void {
    if (this.quiet) return;
    if ((body.type === "job.submitted" || body.type === "job.attached") && body.inputs) {
      this.totalInputs = body.inputs;
      return;
    }
    if (body.type === "job.done") {
      if (body.input === undefined) return;
      this.inputs.set(body.input, true);
      this.render();
      return;
    }
    if (!("task" in body)) return;
    const described = describeEvent(body);
    if (!described) return;
    if (body.input !== undefined && !this.inputs.has(body.input)) {
      this.inputs.set(body.input, false);
      this.inputTasks.set(body.input, new Map());
    }
    if (body.chunk !== undefined) {
      this.chunkEvent(job, body, body.chunk, described);
      return;
    }
    const key = `${body.input ?? ""}\0${job}/${body.task}`;
    if (body.type === "task.queued" && body.args !== undefined)
      this.args.set(key, short(body.args, 50));
    const args = this.args.get(key);
    const chunks = this.chunkProgress.get(key);
    const line: Line = {
      ...(body.input !== undefined ? { input: body.input } : {}),
      name: args !== undefined ? `${body.name} ${args}` : body.name,
      ...described,
      ...(chunks ? { chunks } : {}),
      ...(body.type === "task.retrying"
        ? { attempt: `${body.attempt}${body.maxAttempts ? `/${body.maxAttempts}` : ""}` }
        : {}),
    };
    this.lines.set(key, line);
    if (body.input !== undefined) this.inputTasks.get(body.input)!.set(key, line);
    if (this.spinner) {
      this.render();
    } else if (body.type === "task.started") {
      // A poll reports a task that finished before it (`attach` to an old job) as started, then
      // done: its `running` line is stale. Started lines wait until the poll's events are in.
      this.startedLines.set(key, line);
      queueMicrotask(() => this.flushStarted());
    } else if (body.type !== "task.queued") {
      this.startedLines.delete(key);
      this.streams.stderr.write(`${this.paint(line)}\n`);
    }
  }

  /**
   * A map task of a long input: counted on its analysis's line (its reduce's, the task named like
   * the analysis), never a line of its own; without a live view only a retry or a failure is
   * written, and one line when the reduce starts.
   */
  private chunkEvent(
    job: string,
    body: EventBody & { name: string; input?: string },
    chunk: number,
    described: Pick<Line, "text" | "state">,
  ): void {
    const key = `${body.input ?? ""}\0${job}/${body.name}`;
    let progress = this.chunkProgress.get(key);
    if (!progress) {
      progress = { states: new Map(), reused: 0 };
      this.chunkProgress.set(key, progress);
    }
    const before = progress.states.get(chunk);
    // A chunk stopped before it started (the job was cancelled or ran out of time) did not fail:
    // it stays queued, and its analysis's line says why.
    const neverRan = body.type === "task.failed" && (before ?? "queued") === "queued";
    progress.states.set(chunk, neverRan ? "queued" : described.state);
    if (body.type === "task.done" && body.reused && before !== "done") progress.reused++;
    const row = this.lines.get(key);
    if (row) row.chunks = progress;
    if (this.spinner) {
      this.render();
      return;
    }
    const input = body.input !== undefined ? { input: body.input } : {};
    const name = `${body.name} chunk ${chunk + 1}/${progress.states.size}`;
    if (body.type === "task.retrying" || (body.type === "task.failed" && !neverRan))
      this.streams.stderr.write(`${this.paint({ ...input, name, ...described })}\n`);
  }

  private flushStarted(): void {
    for (const line of this.startedLines.values()) {
      // A reduce starts once every chunk of its analysis is done: say so first.
      if (line.chunks && !line.chunks.reported) {
        line.chunks.reported = true;
        const { text } = mapText(line.chunks);
        this.streams.stderr.write(
          `${this.paint({ ...line, chunks: undefined, state: "done", text })}\n`,
        );
      }
      this.streams.stderr.write(`${this.paint(line)}\n`);
    }
    this.startedLines.clear();
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
    const shown = withChunks(line);
    const text =
      shown.state === "failed"
        ? this.chalk.red(shown.text)
        : shown.state === "retrying"
          ? this.chalk.yellow(shown.text)
          : shown.text;
    const input = line.input !== undefined ? `${this.chalk.bold(line.input)} ` : "";
    return `${this.icon(shown.state)} ${input}${this.chalk.bold(name)} ${text}`;
  }

  /** A batch input's tasks on one line: `✔ notes.txt  sentiment ✔  summary ↻ 2/5`. */
  private inputLine(input: string): { state: Line["state"]; text: string } {
    const tasks = [...(this.inputTasks.get(input)?.values() ?? [])].map((t) => ({
      ...t,
      ...withChunks(t),
    }));
    const has = (state: Line["state"]) => tasks.some((t) => t.state === state);
    const state: Line["state"] = has("failed")
      ? "failed"
      : has("retrying")
        ? "retrying"
        : has("running")
          ? "running"
          : tasks.length > 0 && tasks.every((t) => t.state === "done")
            ? "done"
            : "queued";
    const parts = tasks.map(
      (t) => `${t.name} ${this.icon(t.state)}${t.attempt ? ` ${t.attempt}` : ""}`,
    );
    return { state, text: `${this.icon(state)} ${this.chalk.bold(input)}  ${parts.join("  ")}` };
  }

  /** Every row of the live view: one per task, or in a batch one per input. */
  private rows(): { state: Line["state"]; text: string }[] {
    if (this.inputs.size === 0)
      return [...this.lines.values()].map((l) => ({
        state: withChunks(l).state,
        text: this.paint(l),
      }));
    return [...this.inputs.keys()].map((input) => this.inputLine(input));
  }

  /** Redraws at most every 50 ms: a batch of thousands of tasks sends an event per task change. */
  private render(): void {
    if (!this.spinner || this.renderTimer) return;
    const wait = this.renderedAt + 50 - Date.now();
    if (wait > 0) {
      this.renderTimer = setTimeout(() => {
        this.renderTimer = undefined;
        this.render();
      }, wait).unref();
      return;
    }
    this.renderedAt = Date.now();
    let rows = this.rows();
    let head = "working";
    if (this.inputs.size > 0) {
      const tasks = [...this.lines.values()];
      const count = (state: Line["state"]) => tasks.filter((t) => t.state === state).length;
      const doneInputs = [...this.inputs.values()].filter(Boolean).length;
      head = [
        `${doneInputs}/${this.totalInputs ?? this.inputs.size} inputs finished`,
        `${count("done")}/${tasks.length} tasks done`,
        count("failed") > 0 ? `${count("failed")} failed` : "",
      ]
        .filter(Boolean)
        .join(" · ");
    }
    // A view taller than the terminal cannot be redrawn: keep what still moves, count the rest.
    const room = Math.max(3, ((this.streams.stderr as { rows?: number }).rows ?? 24) - 3);
    if (rows.length > room) {
      const moving = rows.filter((r) => r.state !== "done");
      const shown = moving.slice(0, room - 1);
      rows = [
        ...shown,
        { state: "done", text: this.chalk.dim(`… ${rows.length - shown.length} more`) },
      ];
    }
    this.spinner.text = [head, ...rows.map((r) => r.text)].join("\n");
    if (!this.spinner.isSpinning) this.spinner.start();
  }

  note(line: string): void {
    if (this.quiet) return;
    this.stopSpinner();
    this.streams.stderr.write(`${this.chalk.dim(line)}\n`);
  }

  private stopSpinner(): void {
    clearTimeout(this.renderTimer);
    this.renderTimer = undefined;
    if (this.spinner?.isSpinning) {
      this.spinner.stop();
      // Leave the final state of every task (in a batch: every input) on screen.
      for (const row of this.rows()) this.streams.stderr.write(`${row.text}\n`);
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

  show(view: View): void {
    this.stopSpinner();
    this.streams.stdout.write(
      this.quiet ? view.quiet.map((line) => `${line}\n`).join("") : view.human,
    );
  }

  private jobText(result: JobResult): string {
    const c = this.out;
    const out: string[] = [];
    if (result.model.offline) out.push(c.dim(`[model: ${LOCAL_MODEL_LABEL}]`));
    if (result.kind === "ask") {
      const answer = (result.result as { answer: string | null }).answer;
      if (answer !== null) out.push(answer);
    } else {
      for (const [name, value] of Object.entries(
        (result.result ?? {}) as Record<string, unknown>,
      )) {
        out.push(`${c.bold(name)}:`, indent(renderAnalysis(name, value)));
      }
    }
    for (const [name, error] of Object.entries(result.errors)) {
      out.push(
        // A cancel is not a failure of the analysis: say what happened, without "failed".
        result.status === "cancelled" && error.message.startsWith("cancelled")
          ? `${c.yellow.bold(name)}: ${c.yellow(error.message)}`
          : `${c.red.bold(name)}: ${c.red(`failed: ${error.message}`)}`,
      );
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

/** Any JSON value as lines people read: `key: value`, lists as bullets, nesting by indentation. */
function readable(value: unknown): string {
  if (value === null || typeof value !== "object") return String(value);
  const entries: [string | undefined, unknown][] = Array.isArray(value)
    ? value.map((v) => [undefined, v])
    : Object.entries(value);
  if (entries.length === 0) return Array.isArray(value) ? "(none)" : "(empty)";
  return entries
    .map(([key, v]) => {
      const head = key === undefined ? "•" : `${key}:`;
      if (v === null || typeof v !== "object") return `${head} ${String(v)}`;
      return `${head}\n${indent(readable(v))}`;
    })
    .join("\n");
}

/** Built-in analyses read as sentences; anything else as readable key/value lines. */
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
  return readable(value);
}

export { formatUsage };
