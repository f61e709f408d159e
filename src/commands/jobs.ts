import type { Command } from "commander";
import { parsePositiveInt } from "../config.js";
import { commandContext, type App, type CommandContext } from "../context.js";
import { EXIT, UsageError } from "../errors.js";
import {
  cancelJob,
  jobStatus,
  listJobs,
  requireView,
  STATUS_FILTERS,
  type StatusFilter,
} from "../jobs/manage.js";
import { followJob } from "../jobs/run.js";
import { checkJobId } from "../jobs/ids.js";
import { formatMs, short } from "../output/human.js";
import { withRecovery } from "../restate/runtime.js";

function print(ctx: CommandContext, json: unknown, human: () => string): void {
  ctx.app.stdout.write(
    ctx.config.output === "human" ? human() : `${JSON.stringify(json, null, 2)}\n`,
  );
}

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? "").length)));
  return (
    rows
      .map((r) =>
        r
          .map((cell, i) => cell.padEnd(widths[i]!))
          .join("  ")
          .trimEnd(),
      )
      .join("\n") + "\n"
  );
}

export function registerJobCommands(program: Command, app: App): void {
  program
    .command("attach")
    .description(
      "follow a job from where it stands and print its result, as the submitting command would",
    )
    .argument("<job>", "job id")
    .action(async (job: string, _flags: unknown, command: Command) => {
      const ctx = commandContext(app, command.optsWithGlobals());
      checkJobId(job);
      const runtime = await ctx.openRuntime();
      const view = await withRecovery(runtime, () => requireView(runtime.admin, job));
      ctx.reporter.event(job, {
        type: "job.attached",
        kind: view.kind,
        input: view.input,
        ...(view.children ? { inputs: view.children.length } : {}),
      });
      app.finish(
        await followJob(runtime, job, ctx.reporter, {
          signal: app.signal,
          invocationId: view.invocationId,
        }),
      );
    });

  program
    .command("jobs")
    .description("list recent jobs: id, kind, status, age, tasks done/failed/total (--json too)")
    .option(
      "--status <status>",
      `only jobs that are ${STATUS_FILTERS.slice(0, -1).join(", ")} or ${STATUS_FILTERS.at(-1)} (failed includes partial and cancelled)`,
    )
    .option("--limit <n>", "at most this many (default 20)")
    .action(async (flags: { status?: string; limit?: string }, command: Command) => {
      const ctx = commandContext(app, command.optsWithGlobals());
      if (flags.status && !(STATUS_FILTERS as readonly string[]).includes(flags.status)) {
        throw new UsageError(`--status takes ${STATUS_FILTERS.join(", ")}, not "${flags.status}"`);
      }
      const runtime = await ctx.openRuntime();
      const limit = flags.limit ? parsePositiveInt(flags.limit, "--limit") : 20;
      const jobs = await withRecovery(runtime, () =>
        listJobs(runtime.admin, { status: flags.status as StatusFilter | undefined, limit }),
      );
      print(ctx, jobs, () =>
        jobs.length === 0
          ? "no jobs\n"
          : table([
              ["JOB", "KIND", "STATUS", "AGE", "DONE/FAILED/TOTAL", "INPUT"],
              ...jobs.map((j) => [
                j.job,
                j.kind,
                j.status,
                formatAge(j.ageMs),
                `${j.tasks.done}/${j.tasks.failed}/${j.tasks.total}`,
                j.input,
              ]),
            ]),
      );
      app.finish(EXIT.ok);
    });

  program
    .command("status")
    .description("one job's state and per-task table (attempts, last error, time, tokens)")
    .argument("<job>", "job id")
    .action(async (job: string, _flags: unknown, command: Command) => {
      const ctx = commandContext(app, command.optsWithGlobals());
      checkJobId(job);
      const runtime = await ctx.openRuntime();
      const report = await withRecovery(runtime, () => jobStatus(runtime.admin, job));
      print(ctx, report, () => {
        const head = `job ${report.job} · ${report.kind} · ${report.status} · input ${report.input} · started ${report.createdAt}\n`;
        const tasks =
          report.tasks.length > 0
            ? table([
                ["TASK", "KIND", "STATE", "ATTEMPTS", "TIME", "TOKENS", "LAST ERROR"],
                ...report.tasks.map((t) => [
                  t.args !== undefined ? `${t.name} ${short(t.args, 50)}` : t.name,
                  t.kind,
                  t.state,
                  t.attempts === null ? "-" : String(t.attempts),
                  t.ms === null ? "-" : formatMs(t.ms),
                  t.usage ? String(t.usage.total) : "-",
                  t.lastError ?? "",
                ]),
              ])
            : "";
        const children = report.children
          ? table([
              ["INPUT", "JOB", "STATE", "ERROR"],
              ...report.children.map((c) => [
                c.input,
                c.job ?? "-",
                c.state,
                c.error?.message ?? "",
              ]),
            ])
          : "";
        return head + tasks + children;
      });
      app.finish(EXIT.ok);
    });

  program
    .command("cancel")
    .description("cancel a running job; finished tasks stay finished")
    .argument("<job>", "job id")
    .action(async (job: string, _flags: unknown, command: Command) => {
      const ctx = commandContext(app, command.optsWithGlobals());
      checkJobId(job);
      const runtime = await ctx.openRuntime();
      const status = await withRecovery(runtime, () => cancelJob(runtime.admin, job));
      print(ctx, { job, status }, () =>
        status === "cancelled"
          ? `cancelled job ${job}\n`
          : `job ${job} had already ended: ${status}\n`,
      );
      app.finish(EXIT.ok);
    });
}

function formatAge(ms: number): string {
  const s = Math.round(ms / 1000);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.round(s / 60)}m`;
  if (s < 86_400) return `${Math.round(s / 3600)}h`;
  return `${Math.round(s / 86_400)}d`;
}
