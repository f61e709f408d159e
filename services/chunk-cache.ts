/**
 * The Chunk virtual object: one key per chunk result (services/chunking.ts chunkKey: analysis, model,
 * chunk bytes), so a long input analysed again after an edit asks the model only for the chunks that
 * changed. Its handler runs the map task itself, as a Tasks invocation would, and keeps the answer in
 * the object's state; a key already answered returns that answer without asking anyone.
 *
 * Only a success is kept: a failure, a cancel or a `--timeout` ends the invocation with nothing
 * stored, so the next job asks again. The answer is kept for the retention of the job that used it
 * last (a delayed `expire`). The handler is exclusive per key, so two jobs that need the same chunk
 * at once ask once: the second waits and reuses. Never a key in it: the model spec holds none.
 */
import * as restate from "@restatedev/restate-sdk";
import { askedByModel, type GrantSource } from "./capabilities.js";
import { requireGranted } from "./grant-check.js";
import { TASK_OPTIONS, type AnalysisOutcome, type AnalysisRequest } from "./tasks.js";
import { CHUNK_SERVICE, ZERO_USAGE } from "./types.js";

export interface ChunkRequest extends AnalysisRequest {
  /** The asking job's retention: the answer is kept at least this long after this use. */
  retentionMs: number;
}

export interface ChunkOutcome extends AnalysisOutcome {
  /** Answered from an earlier job's result: nothing was asked, so no usage and no time. */
  reused?: true;
}

const OUTCOME = "outcome";
/** How many times the answer was used: an `expire` sent before the latest use does nothing. */
const USES = "uses";

type Analysis = (ctx: restate.Context, req: AnalysisRequest) => Promise<AnalysisOutcome>;

export function createChunks(grants: GrantSource, analysis: Analysis) {
  const chunks = restate.object({
    name: CHUNK_SERVICE,
    handlers: {
      analysis: async (ctx: restate.ObjectContext, req: ChunkRequest): Promise<ChunkOutcome> => {
        // Checked on a reuse too: anyone who reaches the ingress can call this.
        requireGranted(grants(), askedByModel(req.model));
        const kept = await ctx.get<AnalysisOutcome>(OUTCOME);
        if (kept) {
          await keep(ctx, req.retentionMs);
          return {
            output: kept.output,
            usage: ZERO_USAGE,
            ms: 0,
            llmCalls: 0,
            reused: true,
          };
        }
        const { retentionMs: _retention, ...task } = req;
        const outcome = await analysis(ctx, task);
        ctx.set(OUTCOME, outcome);
        await keep(ctx, req.retentionMs);
        return outcome;
      },
      /** Forgets the answer once the retention of its latest use has passed. */
      expire: async (ctx: restate.ObjectContext, use: number): Promise<void> => {
        if ((await ctx.get<number>(USES)) === use) ctx.clearAll();
      },
    },
    // The map task runs here: the same bounds as a Tasks invocation.
    options: TASK_OPTIONS,
  });
  /**
   * Keeps the answer `retentionMs` after this use: the `expire` sent now clears it unless a later use
   * came first. No clock is read, which would cost a journaled step per chunk.
   */
  async function keep(ctx: restate.ObjectContext, retentionMs: number): Promise<void> {
    const use = ((await ctx.get<number>(USES)) ?? 0) + 1;
    ctx.set(USES, use);
    ctx
      .objectSendClient<typeof chunks>({ name: CHUNK_SERVICE }, ctx.key)
      .expire(use, restate.rpc.sendOpts({ delay: retentionMs }));
  }
  return chunks;
}

export type Chunks = ReturnType<typeof createChunks>;
