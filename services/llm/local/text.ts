// Plain-text helpers for the local model: sentence splitting, tokenising and an extractive
// TextRank ranking. Everything here is pure and deterministic (no clock, no randomness).

/** A sentence of the input, whitespace-collapsed, with its position in the text. */
export interface Sentence {
  text: string;
  index: number;
}

// Words that carry no topic; without this list TextRank would rank sentences by "the" and "of".
const STOPWORDS = new Set(
  (
    "a about above after again against all also am an and any are aren't as at be because been " +
    "before being below between both but by can can't cannot could couldn't did didn't do does " +
    "doesn't doing don't down during each either else etc even ever every few for from further " +
    "get gets got had hadn't has hasn't have haven't having he he'd he'll he's her here here's " +
    "hers herself him himself his how how's however i i'd i'll i'm i've if in into is isn't it " +
    "it's its itself just let's like made make many may me might more most much must mustn't my " +
    "myself neither no nor not now of off often on once one only or other ought our ours " +
    "ourselves out over own per quite rather really said same say says shall shan't she she'd " +
    "she'll she's should shouldn't since so some still such than that that's the their theirs " +
    "them themselves then there there's therefore these they they'd they'll they're they've this " +
    "those though through thus to too under until up upon us very via was wasn't we we'd we'll " +
    "we're we've were weren't what what's whatever when when's where where's whether which while " +
    "who who's whom whose why why's will with within without won't would wouldn't yet you you'd " +
    "you'll you're you've your yours yourself yourselves"
  ).split(" "),
);

// Abbreviations whose trailing period does not end a sentence.
const ABBREVIATIONS = new Set(
  "mr mrs ms dr prof sr jr st vs etc e.g i.e al fig no inc ltd co corp approx dept est".split(" "),
);

/** Counts whitespace-separated words; this is also the local model's notion of a "token". */
export function countWords(text: string): number {
  const trimmed = text.trim();
  return trimmed === "" ? 0 : trimmed.split(/\s+/).length;
}

/** Collapses runs of whitespace (including newlines) into single spaces and trims. */
export function collapse(text: string): string {
  return text.replace(/\s+/g, " ").trim();
}

/** Lower-cased word tokens (letters, digits, inner apostrophes), curly quotes normalised. */
export function words(text: string): string[] {
  return (text
    .replace(/[\u2018\u2019]/g, "'")
    .toLowerCase()
    .match(/[\p{L}\p{N}]+(?:'[\p{L}]+)*/gu) ?? []) as string[];
}

/** Content words: tokens minus stopwords and bare numbers, lightly stemmed (plural -s). */
export function contentWords(text: string): string[] {
  return words(text)
    .filter((w) => !STOPWORDS.has(w) && !/^\p{N}+$/u.test(w) && w.length > 1)
    .map((w) => (w.length > 3 && w.endsWith("s") && !w.endsWith("ss") ? w.slice(0, -1) : w));
}

/**
 * Cuts text to at most `max` characters at a word boundary, marking the cut with "…".
 * Text that already fits is returned unchanged, so an untrimmed point stays a substring.
 */
export function truncate(text: string, max: number): string {
  if (text.length <= max) return text;
  if (max <= 1) return text.slice(0, Math.max(0, max));
  const room = text.slice(0, max - 1);
  const cut = room.lastIndexOf(" ");
  const head = cut > max / 2 ? room.slice(0, cut) : room;
  return head.replace(/[\s,;:.\-–—]+$/u, "") + "…";
}

// Lines that start a new unit even without a blank line before them (markdown bullets, headings).
const BLOCK_START = /^\s*(?:[-*•+]\s+|\d{1,3}[.)]\s+|#{1,6}\s+|>\s*)/u;

/**
 * Splits text into sentences. Hard-wrapped lines are joined back; blank lines, bullets and
 * headings end a unit; inside a unit, . ! ? … followed by whitespace end a sentence unless the
 * word before is a known abbreviation or a single initial ("J. Smith").
 */
export function splitSentences(text: string): Sentence[] {
  const units: string[] = [];
  let current: string[] = [];
  const flush = () => {
    if (current.length > 0) units.push(current.join(" "));
    current = [];
  };
  for (const rawLine of text.replace(/\r\n?/g, "\n").split("\n")) {
    if (rawLine.trim() === "") {
      flush();
      continue;
    }
    if (BLOCK_START.test(rawLine)) {
      flush();
      current.push(rawLine.replace(BLOCK_START, ""));
    } else {
      current.push(rawLine);
    }
  }
  flush();

  const out: Sentence[] = [];
  const boundary = /[.!?…]+["'”’)\]]*\s+/gu;
  for (const unit of units) {
    let start = 0;
    for (const m of unit.matchAll(boundary)) {
      const end = m.index + m[0].length;
      const before = unit.slice(start, m.index);
      const lastWord = (before.match(/([\p{L}.]+)$/u)?.[1] ?? "").toLowerCase();
      // "e.g." arrives as "e.g" here because the final period is part of the match.
      if (ABBREVIATIONS.has(lastWord) || /(?:^|\s)\p{Lu}$/u.test(before)) continue;
      pushSentence(out, unit.slice(start, end));
      start = end;
    }
    pushSentence(out, unit.slice(start));
  }
  return out;
}

function pushSentence(out: Sentence[], raw: string): void {
  const text = collapse(raw);
  // Fragments without a letter or digit ("---", "* * *") are layout, not sentences.
  if (/[\p{L}\p{N}]/u.test(text)) out.push({ text, index: out.length });
}

/**
 * Splits a sentence into clauses at , ; : and dashes, keeping pieces of two words or more.
 * Used when a short text has fewer sentences than the number of points asked for.
 */
export function splitClauses(sentence: string): string[] {
  return sentence
    .split(/\s*[,;:]\s+|\s+[–—-]\s+/u)
    .map((c) => c.trim())
    .filter((c) => countWords(c) >= 2);
}

// Above this many sentences the O(n²) similarity graph gets slow (a book, not an input text);
// such texts are ranked by term frequency alone.
const MAX_TEXTRANK_SENTENCES = 1000;

/**
 * Ranks sentences with TextRank (PageRank over a word-overlap similarity graph, as in Mihalcea
 * & Tarau 2004). Ties, including the all-equal case of texts whose sentences share no words,
 * are broken by term-frequency score, then by position, so the result is fully deterministic.
 * Returns sentence indices, best first.
 */
export function rankSentences(sentences: readonly Sentence[]): number[] {
  const n = sentences.length;
  if (n === 0) return [];
  const bags = sentences.map((s) => contentWords(s.text));

  const freq = new Map<string, number>();
  for (const bag of bags) for (const w of bag) freq.set(w, (freq.get(w) ?? 0) + 1);
  const tf = bags.map((bag) =>
    bag.length === 0 ? 0 : bag.reduce((s, w) => s + (freq.get(w) ?? 0), 0) / Math.sqrt(bag.length),
  );
  const score = n <= MAX_TEXTRANK_SENTENCES ? textRank(bags) : new Array<number>(n).fill(0);

  // Rounding keeps floating-point noise from deciding between sentences that are tied.
  const key = (v: number) => Math.round(v * 1e9);
  return sentences
    .map((_, i) => i)
    .sort(
      (a, b) =>
        key(score[b] ?? 0) - key(score[a] ?? 0) || key(tf[b] ?? 0) - key(tf[a] ?? 0) || a - b,
    );
}

function textRank(bags: readonly string[][]): number[] {
  const n = bags.length;
  const sets = bags.map((b) => new Set(b));
  // weights[j * n + i]: similarity of j and i (symmetric), log-length normalised as in the paper.
  const weights = new Float64Array(n * n);
  const outSum = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const a = sets[i] ?? new Set<string>();
    for (let j = i + 1; j < n; j++) {
      const b = sets[j] ?? new Set<string>();
      if (a.size === 0 || b.size === 0) continue;
      let common = 0;
      for (const w of a) if (b.has(w)) common++;
      if (common === 0) continue;
      const w = common / (Math.log(1 + a.size) + Math.log(1 + b.size));
      weights[i * n + j] = w;
      weights[j * n + i] = w;
      outSum[i] = (outSum[i] ?? 0) + w;
      outSum[j] = (outSum[j] ?? 0) + w;
    }
  }

  const damping = 0.85;
  let score = new Float64Array(n).fill(1 / n);
  for (let iter = 0; iter < 50; iter++) {
    // Sentences with no edges spread their score evenly, which keeps the total at 1.
    let dangling = 0;
    for (let j = 0; j < n; j++) if (outSum[j] === 0) dangling += score[j] ?? 0;
    const next = new Float64Array(n).fill((1 - damping) / n + (damping * dangling) / n);
    for (let j = 0; j < n; j++) {
      const total = outSum[j] ?? 0;
      if (total === 0) continue;
      const share = (damping * (score[j] ?? 0)) / total;
      for (let i = 0; i < n; i++) {
        const w = weights[j * n + i] ?? 0;
        if (w > 0) next[i] = (next[i] ?? 0) + w * share;
      }
    }
    let delta = 0;
    for (let i = 0; i < n; i++) delta += Math.abs((next[i] ?? 0) - (score[i] ?? 0));
    score = next;
    if (delta < 1e-10) break;
  }
  return Array.from(score);
}
