// A compact AFINN-style sentiment lexicon written for pagent's local model (no npm lexicon is
// installed, and the original AFINN list is under a data licence we do not want to vendor).
// Valences run from -5 (very negative) to +5 (very positive). Words that are mostly used in a
// neutral sense ("like" as a preposition, "lie down", "fine" as a penalty) are left out on
// purpose: a missed word costs less than a wrong one.

const BY_VALENCE: Record<number, string> = {
  5:
    "breathtaking ecstatic euphoric exceptional extraordinary flawless magnificent masterpiece " +
    "outstanding phenomenal superb thrilled",
  4:
    "adore adored adores amazing astonishing awesome beautiful brilliant delight delighted " +
    "delightful elated excellent fabulous fantastic glorious gorgeous heavenly impressive " +
    "incredible joy joyful love loved lovely loves loving marvelous marvellous overjoyed perfect " +
    "perfectly remarkable spectacular splendid stunning superior terrific triumph triumphant " +
    "wonderful",
  3:
    "accomplish accomplished admire admired appreciate appreciated attractive beautifully best " +
    "celebrate celebrated charming cheerful comfortable convenient effective efficient elegant " +
    "enjoy enjoyable enjoyed enjoying enjoys enthusiastic excited exciting fantastically fun " +
    "generous glad good grateful great greatest happily happiness happy helpful inspiring " +
    "inspired liked likes nice pleasant pleased pleasure praise praised proud recommend " +
    "recommended reliable rewarding satisfied satisfying success successful successfully " +
    "thankful valuable win winner winning wins won",
  2:
    "accurate advantage affordable agree agreed benefit beneficial better calm capable clean " +
    "clear comfort confident creative decent easy easier easily encouraging fair favorite " +
    "favourite fast fixed fresh friendly gain gained healthy helped honest hope hopeful improve " +
    "improved improvement improves improving intuitive interesting lucky optimistic positive " +
    "powerful progress quick relief relieved reward robust safe secure smart smooth solid stable " +
    "strong supportive thank thanks trust trusted useful welcome worth worthy",
  1:
    "acceptable adequate alright approve approved cool interested ok okay reasonable resolved " +
    "solved sufficient support supported",
  [-1]: "issue issues meh minor odd unclear unsure",
  [-2]:
    "anxious boring complain complained complaint complaints complicated confused confusing " +
    "concern concerned costly crisis danger delay delayed delays difficult dirty disagree doubt " +
    "dull error errors expensive flaw flawed glitch glitches glitchy inconvenient " +
    "inferior lack lacking lacks laggy lose loses losing loss lost mediocre mess " +
    "messy missing negative noisy outdated problem problems rejected risky sick slow sluggish " +
    "stress stressful tired uncomfortable unfortunate unfortunately unstable weak worried worry " +
    "wrong",
  [-3]:
    "afraid angry annoyed annoying bad badly broken bug buggy bugs cheat cheated crash crashed " +
    "crashes crashing cruel damage damaged dangerous defective disappointed disappointing " +
    "disappointment fail failed failing fails failure faulty fear frustrated frustrating " +
    "frustration harmful hostile hurt hurts lousy overpriced pain painful poor poorly regret " +
    "ruin ruined rude sad scared stolen ugly unhappy unreliable unusable upset useless waste " +
    "wasted worse",
  [-4]:
    "appalling awful disaster disastrous disgusted disgusting dreadful evil fraud furious hate " +
    "hated hateful hates horrible miserable nightmare outraged pathetic scam terrible terribly " +
    "toxic worst",
  [-5]: "abhorrent abysmal atrocious catastrophic despicable devastating horrendous horrific",
};

/** Word → valence (-5..+5), lower-case. */
export const LEXICON: ReadonlyMap<string, number> = new Map(
  Object.entries(BY_VALENCE).flatMap(([valence, list]) =>
    list.split(/\s+/).map((w): [string, number] => [w, Number(valence)]),
  ),
);

/** Words that flip (and soften) the valence of a sentiment word up to three tokens later. */
export const NEGATORS: ReadonlySet<string> = new Set(
  (
    "not no never none nobody nothing neither nor cannot without hardly barely " +
    "isn't wasn't aren't weren't don't doesn't didn't won't wouldn't can't couldn't shouldn't " +
    "haven't hasn't hadn't isnt wasnt arent dont doesnt didnt wont cant couldnt shouldnt"
  ).split(" "),
);

/** Words that scale the next sentiment word: > 1 intensifies, < 1 softens. */
export const MODIFIERS: ReadonlyMap<string, number> = new Map([
  ..."very really extremely incredibly absolutely totally completely highly truly super so especially particularly exceptionally deeply hugely utterly"
    .split(" ")
    .map((w): [string, number] => [w, 1.5]),
  ..."slightly somewhat fairly mildly kinda rather partly"
    .split(" ")
    .map((w): [string, number] => [w, 0.5]),
]);

/**
 * Looks a word up, trying a few English inflections ("crashing" → "crash", "loved" → "love")
 * so the list does not have to spell out every form.
 */
export function valenceOf(word: string): number | undefined {
  const direct = LEXICON.get(word);
  if (direct !== undefined) return direct;
  const candidates: string[] = [];
  if (word.endsWith("ies")) candidates.push(word.slice(0, -3) + "y");
  if (word.endsWith("es")) candidates.push(word.slice(0, -2));
  if (word.endsWith("s")) candidates.push(word.slice(0, -1));
  if (word.endsWith("ed")) candidates.push(word.slice(0, -2), word.slice(0, -1));
  if (word.endsWith("ing")) candidates.push(word.slice(0, -3), word.slice(0, -3) + "e");
  if (word.endsWith("ly")) candidates.push(word.slice(0, -2));
  for (const c of candidates) {
    const v = LEXICON.get(c);
    if (v !== undefined) return v;
  }
  return undefined;
}
