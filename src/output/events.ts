import type {
  ErrorData,
  JobKind,
  JobResult,
  JobStatus,
  TaskKind,
  Usage,
} from "../../services/types.js";

/** The NDJSON event schema (SPEC.md "Output"); bump `v` on any breaking change. */
export const EVENT_SCHEMA_VERSION = 1;

/** A task's id and name; a long input's map task also its chunk's index (from 0). */
type TaskRef = { task: string; name: string; chunk?: number };

/** In a batch, every per-input event names its input (`input`), as the user wrote it. */
export type EventBody =
  /** `inputs`: how many inputs a batch has. */
  (
    | { type: "job.submitted"; kind: JobKind; input: string; model: string; inputs?: number }
    | { type: "job.attached"; kind: JobKind; input: string; inputs?: number }
    | ({ type: "task.queued"; kind: TaskKind; args?: unknown } & TaskRef)
    | ({ type: "task.started"; attempt: number } & TaskRef)
    | ({
        type: "task.retrying";
        attempt: number;
        maxAttempts?: number;
        error: string;
      } & TaskRef)
    | ({
        type: "task.done";
        ms?: number;
        output: unknown;
        usage?: Usage;
        /** A map task answered from an earlier job's result for the same chunk. */
        reused?: true;
      } & TaskRef)
    | ({ type: "task.failed"; error: string } & TaskRef)
    | {
        type: "job.done";
        status: JobStatus;
        result: unknown;
        usage: Usage;
        /** USD, when the config has a price for the model. */
        cost?: number;
        errors?: Record<string, ErrorData>;
        /** A long input: its chunks, and how many map tasks reused an earlier result. */
        chunks?: number;
        reusedChunks?: number;
      }
  ) & { input?: string };

export type PagentEvent = EventBody & { v: typeof EVENT_SCHEMA_VERSION; job: string; ts: string };

export function makeEvent(job: string, body: EventBody, now = new Date()): PagentEvent {
  return { v: EVENT_SCHEMA_VERSION, job, ts: now.toISOString(), ...body };
}

/** A chunked job's counts, for its `job.done`. */
export function chunkCounts(result: JobResult): { chunks?: number; reusedChunks?: number } {
  return result.chunks !== undefined
    ? { chunks: result.chunks, reusedChunks: result.reusedChunks ?? 0 }
    : {};
}
