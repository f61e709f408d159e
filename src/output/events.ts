import type { ErrorData, JobKind, JobStatus, TaskKind, Usage } from "../../services/types.js";

/** The NDJSON event schema (SPEC.md "Output"); bump `v` on any breaking change. */
export const EVENT_SCHEMA_VERSION = 1;

/** In a batch, every per-input event names its input (`input`), as the user wrote it. */
export type EventBody =
  /** `inputs`: how many inputs a batch has. */
  (
    | { type: "job.submitted"; kind: JobKind; input: string; model: string; inputs?: number }
    | { type: "job.attached"; kind: JobKind; input: string; inputs?: number }
    | { type: "task.queued"; task: string; name: string; kind: TaskKind; args?: unknown }
    | { type: "task.started"; task: string; name: string; attempt: number }
    | {
        type: "task.retrying";
        task: string;
        name: string;
        attempt: number;
        maxAttempts?: number;
        error: string;
      }
    | { type: "task.done"; task: string; name: string; ms?: number; output: unknown; usage?: Usage }
    | { type: "task.failed"; task: string; name: string; error: string }
    | {
        type: "job.done";
        status: JobStatus;
        result: unknown;
        usage: Usage;
        /** USD, when the config has a price for the model. */
        cost?: number;
        errors?: Record<string, ErrorData>;
      }
  ) & { input?: string };

export type PagentEvent = EventBody & { v: typeof EVENT_SCHEMA_VERSION; job: string; ts: string };

export function makeEvent(job: string, body: EventBody, now = new Date()): PagentEvent {
  return { v: EVENT_SCHEMA_VERSION, job, ts: now.toISOString(), ...body };
}
