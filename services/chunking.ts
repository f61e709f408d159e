/**
 * Splitting a long input into chunks a model can take, and addressing each chunk's map result by
 * its content. Pure and deterministic: the Job splits on every replay and must get the same chunks,
 * and the CLI uses the same functions to decide whether an input is chunked at all.
 *
 * Tokens are estimated, not counted (no tokenizer: each model family has its own, and pagent talks
 * to any of them): 4 characters a token for Latin script and whitespace, 1 token for every other
 * character (CJK, Cyrillic, emoji: an over-estimate for most), so a chunk errs on the small side.
 *
 * Boundaries are content-defined, so an edit moves only the boundaries near it: the text is cut into
 * units (paragraphs; a paragraph too long for one chunk into sentences; a sentence too long into
 * pieces at spaces), and a chunk may end after a unit only once it holds at least half its budget,
 * where the unit's own content decides whether it is a cut point (a hash of its text, with a
 * probability that grows with its size), or where the next unit would not fit. Cutting greedily from
 * the start instead would shift every later chunk when one paragraph grows by a word, and a rerun
 * could reuse nothing after the edit.
 *
 * Each chunk but the first starts with the end of the previous one (its last sentences, up to
 * {@link overlapTokens}), so a statement cut in two by a boundary is still read whole once.
 */
import { createHash } from "node:crypto";
import type { AnalysisSpec, ModelSpec } from "./types.js";

/** The default `--chunk-tokens`: fits the context of every common model with room for the answer. */
export const DEFAULT_CHUNK_TOKENS = 8000;
/** Below this a chunk holds a few sentences, and the reduce would do all the work. */
export const MIN_CHUNK_TOKENS = 200;

/** Characters outside Latin script (and its extensions) count one token each. */
const NON_LATIN = /[^\s -\u024f]/g;

/** The estimated tokens of `text`: see the module comment. */
export function estimateTokens(text: string): number {
  const other = text.match(NON_LATIN)?.length ?? 0;
  return Math.ceil((text.length - other) / 4 + other);
}

/** How much of the previous chunk a chunk repeats: a tenth of the budget, at most 200 tokens. */
export function overlapTokens(chunkTokens: number): number {
  return Math.min(200, Math.floor(chunkTokens / 10));
}

/** A slice [start, end) of the text. */
type Span = [number, number];

/** A unit ends at a blank line (a paragraph), at a sentence end, or at a space. */
const PARAGRAPH_END = /\n[ \t]*\n\s*/g;
const SENTENCE_END = /[.!?…。！？]+["'”’)\]]*\s+/gu;
const SPACE = /\s+/g;

/** Cuts [start, end) after each match of `boundary`, so the pieces cover it exactly. */
function cutAt(text: string, [start, end]: Span, boundary: RegExp): Span[] {
  const spans: Span[] = [];
  let from = start;
  const re = new RegExp(boundary.source, boundary.flags);
  re.lastIndex = start;
  for (let m = re.exec(text); m && m.index < end; m = re.exec(text)) {
    const cut = Math.min(end, m.index + m[0].length);
    if (cut > from && cut < end) {
      spans.push([from, cut]);
      from = cut;
    }
    if (m[0].length === 0) re.lastIndex++;
  }
  spans.push([from, end]);
  return spans;
}

const tokensOf = (text: string, [start, end]: Span) => estimateTokens(text.slice(start, end));

/** Pieces of at most `budget` tokens, cut at spaces where there are some, else anywhere. */
function hardPieces(text: string, span: Span, budget: number): Span[] {
  const pieces: Span[] = [];
  let current: Span | undefined;
  for (const word of cutAt(text, span, SPACE)) {
    if (current && tokensOf(text, [current[0], word[1]]) <= budget) {
      current[1] = word[1];
      continue;
    }
    if (current) pieces.push(current);
    current = [word[0], word[1]];
    // One "word" longer than the budget (no spaces at all): cut it by length.
    while (tokensOf(text, current) > budget) {
      // The longest prefix within the budget, by bisection (at least one character).
      let low: number = current[0] + 1;
      let high: number = current[1];
      while (low < high) {
        const mid = Math.ceil((low + high) / 2);
        if (tokensOf(text, [current[0], mid]) <= budget) low = mid;
        else high = mid - 1;
      }
      pieces.push([current[0], low]);
      current = [low, current[1]];
    }
  }
  if (current) pieces.push(current);
  return pieces;
}

/** The units of the text, each at most `budget` tokens: paragraphs, else sentences, else pieces. */
function units(text: string, budget: number): Span[] {
  return cutAt(text, [0, text.length], PARAGRAPH_END).flatMap((paragraph) =>
    tokensOf(text, paragraph) <= budget
      ? [paragraph]
      : cutAt(text, paragraph, SENTENCE_END).flatMap((sentence) =>
          tokensOf(text, sentence) <= budget ? [sentence] : hardPieces(text, sentence, budget),
        ),
  );
}

/** A number in [0, 1) from the unit's text alone (FNV-1a): where the content says a chunk may end. */
function unitHash(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return (h >>> 0) / 2 ** 32;
}

/** Where the overlap taken from the end of [start, end) begins: a sentence start, else a space. */
function overlapStart(text: string, [start, end]: Span, tokens: number): number {
  if (tokens <= 0) return end;
  let from = end;
  // Whole sentences from the end while they fit.
  const sentences = cutAt(text, [start, end], SENTENCE_END);
  for (let i = sentences.length - 1; i >= 0; i--) {
    if (tokensOf(text, [sentences[i]![0], end]) > tokens) break;
    from = sentences[i]![0];
  }
  if (from < end) return from;
  // The last sentence alone is too long: its last words.
  const words = cutAt(text, [start, end], SPACE);
  for (let i = words.length - 1; i >= 0; i--) {
    if (tokensOf(text, [words[i]![0], end]) > tokens) break;
    from = words[i]![0];
  }
  return from;
}

/**
 * The chunks of `text` for a budget of `chunkTokens` estimated tokens each, overlap included. A text
 * that fits is one chunk, the text itself.
 */
export function splitChunks(text: string, chunkTokens: number): string[] {
  if (estimateTokens(text) <= chunkTokens) return [text];
  const overlap = overlapTokens(chunkTokens);
  const budget = chunkTokens - overlap;
  // After half the budget, a unit of t tokens is a cut point with probability t / (budget / 4):
  // chunks end on their own at about 3/4 of the budget, and rarely have to be cut where they are full.
  const spacing = budget / 4;
  const bodies: Span[] = [];
  let body: Span | undefined;
  let size = 0;
  for (const unit of units(text, budget)) {
    const tokens = tokensOf(text, unit);
    if (body && size + tokens > budget) {
      bodies.push(body);
      body = undefined;
    }
    if (!body) {
      body = [unit[0], unit[1]];
      size = tokens;
    } else {
      body[1] = unit[1];
      size += tokens;
    }
    if (size >= budget / 2 && unitHash(text.slice(unit[0], unit[1])) < tokens / spacing) {
      bodies.push(body);
      body = undefined;
    }
  }
  if (body) bodies.push(body);
  return bodies.map((span, i) => {
    const from = i === 0 ? span[0] : overlapStart(text, bodies[i - 1]!, overlap);
    return text.slice(from, span[1]);
  });
}

/** Bump when the map prompt changes: chunk results asked the old way are then asked again. */
const MAP_VERSION = 1;

/**
 * The key of one chunk's map result: everything that changes the answer (the analysis, the model and
 * where it is reached, the chunk's bytes, the map prompt's version) and nothing that does not (retry
 * settings, limits, the job). The model spec never holds a key; header values are as written.
 */
export function chunkKey(analysis: AnalysisSpec, model: ModelSpec, chunk: string): string {
  return `ck_${createHash("sha256")
    .update(
      JSON.stringify({
        v: MAP_VERSION,
        analysis: [analysis.name, analysis.instruction, analysis.schema],
        model,
      }),
    )
    .update("\0")
    .update(chunk)
    .digest("base64url")
    .slice(0, 43)}`;
}
