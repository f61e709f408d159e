// Lexicon-based sentiment for the local model: sum word valences with negation and intensifier
// handling, then squash the sum into [-1, 1]. It is a word count, not understanding, and the
// reason it gives says which words it counted.

import { LEXICON, MODIFIERS, NEGATORS, valenceOf } from "./lexicon.js";
import { splitSentences, words } from "./text.js";

/** The sentiment analysis value, in the shape the `sentiment` schema asks for. */
export interface SentimentResult {
  label: "positive" | "negative" | "neutral" | "mixed";
  score: number;
  reason: string;
}

interface Hit {
  phrase: string;
  value: number;
  order: number;
}

// A negated word keeps half its strength with the opposite sign: "not good" is mildly negative,
// "not bad" mildly positive (the same dampening idea as VADER's).
const NEGATION_FACTOR = -0.5;
// Negation reaches this many tokens ahead: "not at all good", "never really liked".
const NEGATION_WINDOW = 3;
// A segment summing to at least this (one "good", two "okay") counts as strongly positive.
const STRONG = 2;
// The normalisation constant VADER uses to map an unbounded sum into (-1, 1).
const ALPHA = 15;
// |score| below this is neutral: a lone "okay" (+1 → 0.25) does not make a text positive.
const NEUTRAL_BELOW = 0.3;
// Mixed needs the weaker side to be at least this share of the stronger one, so one grumble in
// a glowing review stays positive.
const MIXED_RATIO = 1 / 3;

const round2 = (v: number) => Math.round(v * 100) / 100 + 0; // + 0 turns -0 into 0
const signed = (v: number) => (v > 0 ? `+${round2(v)}` : `${round2(v)}`);

/** Scores text with the local lexicon; deterministic, one-line reason naming the words used. */
export function analyzeSentiment(text: string): SentimentResult {
  const hits: Hit[] = [];
  let positive = 0;
  let negative = 0;
  let total = 0;

  for (const sentence of splitSentences(text)) {
    // Contrast words split a sentence: "good food but terrible service" has two opposite parts,
    // which must not cancel out before the mixed test.
    for (const segment of sentence.text.split(
      /\s*;\s*|\s*\b(?:but|however|although|though|whereas|yet)\b\s*/iu,
    )) {
      const tokens = words(segment);
      let segmentScore = 0;
      let negatedAt = -Infinity;
      let modifier: { at: number; factor: number } | undefined;
      tokens.forEach((token, i) => {
        if (NEGATORS.has(token)) {
          negatedAt = i;
          return;
        }
        const factor = MODIFIERS.get(token);
        if (factor !== undefined && !LEXICON.has(token)) {
          modifier = { at: i, factor };
          return;
        }
        const valence = valenceOf(token);
        if (valence === undefined) return;
        let value = valence;
        let start = i;
        if (modifier !== undefined && i - modifier.at <= 2) {
          value *= modifier.factor;
          start = modifier.at;
        }
        if (i - negatedAt <= NEGATION_WINDOW) {
          value *= NEGATION_FACTOR;
          start = negatedAt;
          // One negator flips one word: in "not good and great", "great" stays positive.
          negatedAt = -Infinity;
        }
        modifier = undefined;
        segmentScore += value;
        hits.push({ phrase: tokens.slice(start, i + 1).join(" "), value, order: hits.length });
      });
      total += segmentScore;
      if (segmentScore >= STRONG) positive += segmentScore;
      if (segmentScore <= -STRONG) negative += -segmentScore;
    }
  }

  const score = round2(total / Math.sqrt(total * total + ALPHA));
  const mixed =
    positive > 0 &&
    negative > 0 &&
    Math.min(positive, negative) >= MIXED_RATIO * Math.max(positive, negative);
  const label: SentimentResult["label"] = mixed
    ? "mixed"
    : Math.abs(score) < NEUTRAL_BELOW
      ? "neutral"
      : score > 0
        ? "positive"
        : "negative";

  return { label, score, reason: reasonFor(label, hits, total) };
}

function reasonFor(label: SentimentResult["label"], hits: Hit[], total: number): string {
  if (hits.length === 0) return "No words from the local sentiment lexicon were found.";
  const byStrength = [...hits].sort(
    (a, b) => Math.abs(b.value) - Math.abs(a.value) || a.order - b.order,
  );
  // For a mixed text, name the strongest word of each side first so the reason shows both.
  const picked: Hit[] = [];
  if (label === "mixed") {
    const pos = byStrength.find((h) => h.value > 0);
    const neg = byStrength.find((h) => h.value < 0);
    if (pos) picked.push(pos);
    if (neg) picked.push(neg);
  }
  for (const h of byStrength) {
    if (picked.length >= 3) break;
    if (!picked.some((p) => p.phrase === h.phrase)) picked.push(h);
  }
  picked.sort((a, b) => a.order - b.order);
  const list = picked.map((h) => `"${h.phrase}" (${signed(h.value)})`).join(", ");
  const note = label === "mixed" ? "; strong positive and strong negative passages both occur" : "";
  return `Lexicon total ${signed(total)} over ${hits.length} sentiment word${hits.length === 1 ? "" : "s"}; strongest: ${list}${note}.`;
}
