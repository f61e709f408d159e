import { assembleViews, type StateRow } from "../../services/job/view-store.js";
import {
  JOB_SERVICE,
  type BatchResult,
  type JobResult,
  type JobView,
} from "../../services/types.js";
import { EXIT, PagentError, UnavailableError } from "../errors.js";
import { sqlString, type AdminClient } from "../restate/admin.js";
import { diskTroubleMessage, type DiskTrouble } from "../restate/disk.js";
import { chunkCounts, type EventBody } from "../output/events.js";
import {
  failureLine,
  snapshotTask,
  taskEvents,
  type InvocationRow,
  type TaskSnapshot,
} from "./progress.js";

export interface WatchOptions {
  /** Called for every event of the job (and of a batch's child jobs). */
  onEvent: (job: string, event: EventBody) => void;
  intervalMs?: number;
  /** Resolves when the job's invocation has finished: poll at once instead of at the next tick. */
  finished?: Promise<unknown>;
  signal?: AbortSignal;
  /** How long a job may stay unknown to Restate before we say so (a just-submitted job takes a moment). */
  unknownAfterMs?: number;
  /** How long Restate may stay unreachable before watching gives up. */
  outageTimeoutMs?: number;
  /**
   * Restarts what died of a runtime pagent manages (the embedded endpoint and server) and resumes
   * the invocations backing off meanwhile. Called when Restate says it cannot reach the endpoint:
   * Restate itself stays healthy then, so only the job's own invocations show the death.
   */
  revive?: () => Promise<void>;
  /** Embedded: whether the server hit a full disk; checked every few seconds while the job runs. */
  diskTrouble?: () => DiskTrouble | undefined;
  /** Says on stderr what keeps the job from moving (a full disk), once per change. */
  warn?: (line: string) => void;
}

/** How often a dead endpoint may be revived while Restate keeps reporting it unreachable. */
const REVIVE_EVERY_MS = 2000;

/** How often the server's log and free space are checked for a full disk. */
const DISK_CHECK_EVERY_MS = 2000;

/** Restate's words for an endpoint it cannot connect to (TCP or unix socket). */
const UNREACHABLE_ENDPOINT = /connect|refused|os error|unreachable/i;

/** An invocation waiting to retry (or paused) because Restate could not reach the endpoint. */
export function endpointUnreachable(row: InvocationRow): boolean {
  return (
    (row.status === "backing-off" || row.status === "paused") &&
    UNREACHABLE_ENDPOINT.test(row.last_failure ?? "")
  );
}

/** Reads jobs' durable state straight from Restate's state table: no invocation, nothing to retain. */
export async function readViews(
  admin: AdminClient,
  jobs?: string[],
): Promise<Map<string, JobView>> {
  if (jobs?.length === 0) return new Map();
  const only = jobs ? ` AND service_key IN (${jobs.map(sqlString).join(", ")})` : "";
  const rows = await admin.query<StateRow>(
    `SELECT service_key, key, value_utf8 FROM state WHERE service_name = ${sqlString(JOB_SERVICE)}${only}`,
  );
  return assembleViews(rows);
}

export async function readInvocations(
  admin: AdminClient,
  ids: string[],
): Promise<Map<string, InvocationRow>> {
  if (ids.length === 0) return new Map();
  const rows = await admin.query<InvocationRow>(
    `SELECT id, status, retry_count, last_failure, completion_result, completion_failure FROM sys_invocation WHERE id IN (${ids.map(sqlString).join(", ")})`,
  );
  return new Map(rows.map((row) => [row.id, row]));
}

/** Where the watcher reads from; `recover` brings Restate back (or finds another node) after a failure. */
export interface WatchSource {
  admin: AdminClient;
  recover?: () => Promise<void>;
}

/** Follows a job through Restate's state until it finishes, emitting events as its tasks move. */
export async function watchJob(
  source: WatchSource,
  job: string,
  options: WatchOptions,
): Promise<JobResult | BatchResult> {
  const interval = options.intervalMs ?? 150;
  const seen = new Map<string, TaskSnapshot>();
  const finishedChildren = new Set<number>();
  const started = Date.now();
  let outageSince: number | undefined;
  let revivedAt = 0;
  let diskCheckedAt = 0;
  let diskWarning: string | undefined;
  for (;;) {
    options.signal?.throwIfAborted();
    if (options.diskTrouble && Date.now() - diskCheckedAt > DISK_CHECK_EVERY_MS) {
      diskCheckedAt = Date.now();
      const trouble = options.diskTrouble();
      const warning = trouble && diskTroubleMessage(trouble);
      if (warning && warning !== diskWarning) options.warn?.(warning);
      diskWarning = warning;
      // A full disk is no outage to give up on: the job waits in Restate until space is back.
      if (trouble) outageSince = undefined;
      if (trouble?.spaceBack) await options.revive?.().catch(() => undefined);
    }
    let result: JobResult | BatchResult | undefined;
    try {
      const poll = await pollOnce(source.admin, job, seen, finishedChildren, options);
      result = poll.result;
      outageSince = undefined;
      if (poll.endpointUnreachable && options.revive && Date.now() - revivedAt > REVIVE_EVERY_MS) {
        revivedAt = Date.now();
        // A failed revival is tried again on a later poll; the job waits in Restate meanwhile.
        await options.revive().catch(() => undefined);
      }
    } catch (error) {
      if (!(error instanceof UnavailableError)) throw error;
      // Restate died or a node went away: the job is safe in its log; bring it back and keep watching.
      outageSince ??= Date.now();
      if (Date.now() - outageSince > (options.outageTimeoutMs ?? 120_000)) throw error;
      await source.recover?.().catch(() => undefined);
    }
    if (result) return result;
    if (!seen.size && Date.now() - started > (options.unknownAfterMs ?? 30_000)) {
      const views = await readViews(source.admin, [job]).catch(() => undefined);
      if (views && !views.has(job)) {
        throw new PagentError(
          `no job ${job} in Restate (it may have expired); see \`pagent jobs\``,
          EXIT.usage,
        );
      }
    }
    let timer: NodeJS.Timeout | undefined;
    const tick = new Promise((resolve) => (timer = setTimeout(resolve, interval)));
    const finished = options.finished;
    await Promise.race(
      finished ? [tick, finished.then(() => (options.finished = undefined))] : [tick],
    );
    clearTimeout(timer);
  }
}

async function pollOnce(
  admin: AdminClient,
  job: string,
  seen: Map<string, TaskSnapshot>,
  finishedChildren: Set<number>,
  options: WatchOptions,
): Promise<{ result?: JobResult | BatchResult; endpointUnreachable?: boolean }> {
  const view = (await readViews(admin, [job])).get(job);
  if (!view) return {};
  // Per input, not per child job: inputs with equal bytes share a job but keep their own events.
  // An input that never started (queued, or not run: cancelled with a reason) has no events.
  const open = (view.children ?? []).flatMap((c, index) =>
    c.job &&
    !finishedChildren.has(index) &&
    c.state !== "queued" &&
    !(c.state === "cancelled" && c.error)
      ? [{ index, job: c.job, input: c.input }]
      : [],
  );
  const childViews = await readViews(admin, [...new Set(open.map((c) => c.job))]);
  const watched: { view: JobView; index?: number; input?: string }[] = [
    { view },
    ...open.flatMap((c) => {
      const child = childViews.get(c.job);
      return child ? [{ view: child, index: c.index, input: c.input }] : [];
    }),
  ];
  const invocationIds = [view, ...childViews.values()].flatMap((v) => [
    v.invocationId,
    ...v.tasks.filter((t) => t.state === "running" && t.invocationId).map((t) => t.invocationId!),
  ]);
  const invocations = await readInvocations(admin, invocationIds);
  for (const { view: v, index, input } of watched) {
    const named = input !== undefined ? { input } : {};
    for (const task of v.tasks) {
      const snapshot = snapshotTask(
        v,
        task,
        task.invocationId ? invocations.get(task.invocationId) : undefined,
      );
      const key = `${index ?? ""}/${v.job}/${task.id}`;
      for (const event of taskEvents(seen.get(key), snapshot))
        options.onEvent(v.job, { ...event, ...named });
      seen.set(key, snapshot);
    }
    if (index !== undefined && v.status !== "running" && v.result) {
      finishedChildren.add(index);
      const result = v.result as JobResult;
      options.onEvent(v.job, {
        type: "job.done",
        ...named,
        status: result.status,
        result: result.result,
        usage: result.usage,
        ...(result.cost !== undefined ? { cost: result.cost } : {}),
        errors: result.errors,
        ...chunkCounts(result),
      });
    }
  }
  if (view.status !== "running" && view.result) return { result: view.result };
  const own = invocations.get(view.invocationId);
  if (own?.status === "completed" && own.completion_result === "failure") {
    // The view was read before the invocation table: a job that ended between the two reads (a
    // cancelled batch ends as a failure once its result is saved) has its result by now; the next
    // poll reports it with its last events.
    const latest = (await readViews(admin, [job])).get(job);
    if (latest && latest.status !== "running" && latest.result) return {};
    throw new PagentError(
      `job ${job} failed: ${failureLine(own.completion_failure) ?? "unknown failure"}`,
      EXIT.jobFailed,
    );
  }
  return { endpointUnreachable: [...invocations.values()].some(endpointUnreachable) };
}
