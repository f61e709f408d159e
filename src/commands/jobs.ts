import type { Command } from "commander";
import { parsePositiveInt } from "../config.js";
import { commandContext, type App } from "../context.js";
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
import { cancelView, jobsView, statusView } from "../output/views.js";
import { withRecovery } from "../restate/runtime.js";

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
      ctx.reporter.show(jobsView(jobs));
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
      ctx.reporter.show(statusView(report));
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
      ctx.reporter.show(cancelView(job, status));
      app.finish(EXIT.ok);
    });
}
