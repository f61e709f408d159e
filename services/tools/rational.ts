/** An exact fraction n/d with d > 0 and gcd(|n|, d) = 1. */
export interface Rational {
  readonly n: bigint;
  readonly d: bigint;
}

const abs = (x: bigint): bigint => (x < 0n ? -x : x);

function gcd(a: bigint, b: bigint): bigint {
  a = abs(a);
  b = abs(b);
  while (b !== 0n) [a, b] = [b, a % b];
  return a;
}

/** Builds a reduced rational; the caller guarantees d !== 0. */
export function rational(n: bigint, d: bigint = 1n): Rational {
  if (d < 0n) {
    n = -n;
    d = -d;
  }
  const g = gcd(n, d);
  return g > 1n ? { n: n / g, d: d / g } : { n, d };
}

export const add = (a: Rational, b: Rational): Rational =>
  rational(a.n * b.d + b.n * a.d, a.d * b.d);
export const sub = (a: Rational, b: Rational): Rational =>
  rational(a.n * b.d - b.n * a.d, a.d * b.d);
export const mul = (a: Rational, b: Rational): Rational => rational(a.n * b.n, a.d * b.d);
export const neg = (a: Rational): Rational => ({ n: -a.n, d: a.d });
export const isZero = (a: Rational): boolean => a.n === 0n;
export const isInteger = (a: Rational): boolean => a.d === 1n;

/** a / b; the caller rejects b = 0. */
export const div = (a: Rational, b: Rational): Rational => rational(a.n * b.d, a.d * b.n);

/** Remainder with the sign of the dividend, like JavaScript's `%`: a - b * trunc(a / b). */
export function mod(a: Rational, b: Rational): Rational {
  const q = (a.n * b.d) / (a.d * b.n); // BigInt division truncates toward zero
  return sub(a, mul(b, rational(q)));
}

/** a ^ e for an integer exponent; the caller rejects 0 ^ negative and oversized results. */
export function pow(a: Rational, e: bigint): Rational {
  if (e >= 0n) return { n: a.n ** e, d: a.d ** e };
  return rational(a.d ** -e, a.n ** -e);
}

export function bitLength(x: bigint): number {
  return x === 0n ? 0 : abs(x).toString(2).length;
}

/** Largest r with r*r <= x, for x >= 0. */
export function isqrt(x: bigint): bigint {
  if (x < 2n) return x;
  let r = 1n << BigInt(Math.ceil(bitLength(x) / 2));
  for (;;) {
    const next = (r + x / r) >> 1n;
    if (next >= r) return r;
    r = next;
  }
}

/** Exact square root when it is rational (both parts of the reduced fraction are squares). */
export function exactSqrt(a: Rational): Rational | undefined {
  const rn = isqrt(a.n);
  const rd = isqrt(a.d);
  return rn * rn === a.n && rd * rd === a.d ? { n: rn, d: rd } : undefined;
}

function stripTrailingZeros(s: string): string {
  return s.includes(".") ? s.replace(/0+$/, "").replace(/\.$/, "") : s;
}

/** Exact decimal text if the fraction terminates (denominator only has factors 2 and 5). */
export function toExactDecimal(a: Rational): string | undefined {
  let d = a.d;
  let twos = 0;
  let fives = 0;
  while (d % 2n === 0n) {
    d /= 2n;
    twos++;
  }
  while (d % 5n === 0n) {
    d /= 5n;
    fives++;
  }
  if (d !== 1n) return undefined;
  const scale = Math.max(twos, fives);
  const digits = abs((a.n * 10n ** BigInt(scale)) / a.d).toString();
  const sign = a.n < 0n ? "-" : "";
  if (scale === 0) return sign + digits;
  const padded = digits.padStart(scale + 1, "0");
  const cut = padded.length - scale;
  return sign + stripTrailingZeros(`${padded.slice(0, cut)}.${padded.slice(cut)}`);
}

/** Decimal approximation rounded half-up to `significant` digits; scientific outside 1e-7..1e10. */
export function toApproxDecimal(a: Rational, significant = 10): string {
  if (a.n === 0n) return "0";
  const n = abs(a.n);
  const d = a.d;
  const sign = a.n < 0n ? "-" : "";
  // floor(log10(n/d)) is either the digit-count difference or one less.
  let exp = n.toString().length - d.toString().length;
  const atLeast = exp >= 0 ? n >= d * 10n ** BigInt(exp) : n * 10n ** BigInt(-exp) >= d;
  if (!atLeast) exp--;
  const shift = significant - 1 - exp;
  const num = shift >= 0 ? n * 10n ** BigInt(shift) : n;
  const den = shift >= 0 ? d : d * 10n ** BigInt(-shift);
  let q = (2n * num + den) / (2n * den);
  if (q.toString().length > significant) {
    q /= 10n;
    exp++;
  }
  const digits = q.toString();
  if (exp >= -7 && exp < significant) {
    if (exp >= 0) {
      return sign + stripTrailingZeros(`${digits.slice(0, exp + 1)}.${digits.slice(exp + 1)}`);
    }
    return sign + stripTrailingZeros(`0.${"0".repeat(-exp - 1)}${digits}`);
  }
  const mantissa = stripTrailingZeros(`${digits.slice(0, 1)}.${digits.slice(1)}`);
  return `${sign}${mantissa}e${exp >= 0 ? "+" : "-"}${Math.abs(exp)}`;
}
