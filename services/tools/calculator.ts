import { z } from "zod";
import { defineTool } from "./define-tool.js";
import {
  add,
  bitLength,
  div,
  exactSqrt,
  isInteger,
  isZero,
  isqrt,
  mod,
  mul,
  neg,
  pow,
  rational,
  sub,
  toApproxDecimal,
  toExactDecimal,
  type Rational,
} from "./rational.js";
import { ToolError } from "./types.js";

/** Longest expression accepted, so parsing stays cheap and recursion shallow. */
export const MAX_EXPRESSION_LENGTH = 1000;
/** Cap on numerator + denominator size; ~2,400 decimal digits keeps every operation fast. */
const MAX_RESULT_BITS = 8192;
/** Exponent-notation literals beyond this would allocate huge powers of ten before any check. */
const MAX_LITERAL_EXPONENT = 10_000;

type Token =
  | { kind: "number"; text: string; pos: number }
  | { kind: "op"; text: "+" | "-" | "*" | "/" | "%" | "^" | "(" | ")" | ","; pos: number }
  | { kind: "ident"; text: string; pos: number }
  | { kind: "end"; pos: number };

function syntaxError(pos: number, message: string): ToolError {
  return new ToolError("invalid_args", `syntax error at position ${pos + 1}: ${message}`);
}

function evalError(message: string): ToolError {
  return new ToolError("failed", message);
}

const NUMBER_RE = /(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?/y;
const IDENT_RE = /[A-Za-z_][A-Za-z0-9_]*/y;

function tokenize(input: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  while (i < input.length) {
    const ch = input[i] ?? "";
    if (/\s/.test(ch)) {
      i++;
      continue;
    }
    NUMBER_RE.lastIndex = i;
    const num = NUMBER_RE.exec(input);
    if (num) {
      tokens.push({ kind: "number", text: num[0], pos: i });
      i += num[0].length;
      continue;
    }
    IDENT_RE.lastIndex = i;
    const ident = IDENT_RE.exec(input);
    if (ident) {
      tokens.push({ kind: "ident", text: ident[0], pos: i });
      i += ident[0].length;
      continue;
    }
    // `**` is what models trained on Python write for powers.
    if (input.startsWith("**", i)) {
      tokens.push({ kind: "op", text: "^", pos: i });
      i += 2;
      continue;
    }
    const op = ({ "×": "*", "÷": "/", "−": "-" } as Record<string, string>)[ch] ?? ch;
    if ("+-*/%^(),".includes(op)) {
      tokens.push({ kind: "op", text: op as "+", pos: i });
      i++;
      continue;
    }
    throw syntaxError(i, `unexpected character '${ch}'`);
  }
  tokens.push({ kind: "end", pos: input.length });
  return tokens;
}

function checkSize(value: Rational): Rational {
  if (bitLength(value.n) + bitLength(value.d) > MAX_RESULT_BITS) {
    throw evalError(
      `result too large: more than ${MAX_RESULT_BITS} bits (about ${Math.floor(MAX_RESULT_BITS * Math.log10(2))} digits)`,
    );
  }
  return value;
}

function parseLiteral(text: string, pos: number): Rational {
  const [mantissa = "", expText] = text.toLowerCase().split("e");
  const [intPart = "", fracPart = ""] = mantissa.split(".");
  const exponent = expText === undefined ? 0 : Number(expText);
  if (Math.abs(exponent) > MAX_LITERAL_EXPONENT) {
    throw evalError(
      `number at position ${pos + 1} has an exponent beyond ±${MAX_LITERAL_EXPONENT}`,
    );
  }
  const digits = BigInt((intPart + fracPart).replace(/^0+(?=\d)/, "") || "0");
  const scale = exponent - fracPart.length;
  const value =
    scale >= 0 ? rational(digits * 10n ** BigInt(scale)) : rational(digits, 10n ** BigInt(-scale));
  return checkSize(value);
}

function power(base: Rational, exponent: Rational): Rational {
  if (!isInteger(exponent)) {
    throw evalError(
      `non-integer exponent ${toExactDecimal(exponent) ?? `${exponent.n}/${exponent.d}`}: only integer powers have exact results`,
    );
  }
  const e = exponent.n;
  if (isZero(base)) {
    if (e < 0n) throw evalError("division by zero (0 raised to a negative power)");
    return rational(e === 0n ? 1n : 0n);
  }
  if (base.d === 1n && (base.n === 1n || base.n === -1n)) {
    return rational(base.n === -1n && e % 2n !== 0n ? -1n : 1n);
  }
  // A lower bound on the result size, checked before computing: a huge exponent must fail
  // fast instead of exhausting memory; checkSize then applies the exact limit.
  const absE = e < 0n ? -e : e;
  const lowerBound = (bitLength(base.n) - 1 + bitLength(base.d) - 1) * Number(absE);
  if (absE > BigInt(MAX_RESULT_BITS) || lowerBound > MAX_RESULT_BITS) {
    throw evalError(`result too large: exponent ${e} is too big for this base`);
  }
  return checkSize(pow(base, e));
}

function sqrt(value: Rational): Rational {
  if (value.n < 0n) throw evalError("sqrt of a negative number");
  const exact = exactSqrt(value);
  if (exact) return exact;
  const scale = 10n ** 24n;
  const approx = rational(isqrt((value.n * scale * scale) / value.d), scale);
  throw evalError(
    `sqrt(${toExactDecimal(value) ?? `${value.n}/${value.d}`}) is irrational, so it has no exact result (≈ ${toApproxDecimal(approx)}); use a number instead`,
  );
}

const FUNCTIONS: Record<string, (x: Rational) => Rational> = { sqrt };

/** Recursive-descent parser that evaluates as it goes; precedence: unary -, then ^, then * / %. */
class Parser {
  private index = 0;
  constructor(private readonly tokens: Token[]) {}

  private peek(): Token {
    return this.tokens[this.index] ?? { kind: "end", pos: 0 };
  }

  private next(): Token {
    const token = this.peek();
    this.index++;
    return token;
  }

  private isOp(text: string): boolean {
    const token = this.peek();
    return token.kind === "op" && token.text === text;
  }

  private describe(token: Token): string {
    return token.kind === "end" ? "the expression ended" : `found '${token.text}'`;
  }

  parseAll(): Rational {
    const value = this.expression();
    const token = this.peek();
    if (token.kind !== "end") {
      throw syntaxError(token.pos, `expected an operator or the end, ${this.describe(token)}`);
    }
    return value;
  }

  private expression(): Rational {
    let value = this.term();
    while (this.isOp("+") || this.isOp("-")) {
      const op = this.next();
      const right = this.term();
      value = checkSize(
        op.kind === "op" && op.text === "+" ? add(value, right) : sub(value, right),
      );
    }
    return value;
  }

  private term(): Rational {
    let value = this.unary();
    while (this.isOp("*") || this.isOp("/") || this.isOp("%")) {
      const op = this.next();
      const right = this.unary();
      if (op.kind === "op" && op.text === "*") {
        value = checkSize(mul(value, right));
      } else {
        if (isZero(right)) throw evalError(`division by zero at position ${op.pos + 1}`);
        value = checkSize(
          op.kind === "op" && op.text === "/" ? div(value, right) : mod(value, right),
        );
      }
    }
    return value;
  }

  // Unary minus binds looser than ^, so -2^2 = -4 as in mathematics.
  private unary(): Rational {
    if (this.isOp("-")) {
      this.next();
      return neg(this.unary());
    }
    if (this.isOp("+")) {
      this.next();
      return this.unary();
    }
    return this.power();
  }

  // Right-associative: 2^3^2 = 2^9; the exponent may carry its own sign (2^-1).
  private power(): Rational {
    const base = this.primary();
    if (!this.isOp("^")) return base;
    this.next();
    return power(base, this.unary());
  }

  private primary(): Rational {
    const token = this.next();
    if (token.kind === "number") return parseLiteral(token.text, token.pos);
    if (token.kind === "op" && token.text === "(") {
      const value = this.expression();
      this.expect(")");
      return value;
    }
    if (token.kind === "ident") {
      const fn = FUNCTIONS[token.text.toLowerCase()];
      if (!fn) {
        throw syntaxError(
          token.pos,
          `unknown name '${token.text}' (supported: numbers, + - * / % ^, parentheses, sqrt())`,
        );
      }
      this.expect("(");
      const arg = this.expression();
      this.expect(")");
      return fn(arg);
    }
    throw syntaxError(token.pos, `expected a number or '(', ${this.describe(token)}`);
  }

  private expect(text: string): void {
    const token = this.next();
    if (token.kind !== "op" || token.text !== text) {
      throw syntaxError(token.pos, `expected '${text}', ${this.describe(token)}`);
    }
  }
}

/** Evaluates an arithmetic expression exactly; throws ToolError on syntax or math errors. */
export function evaluate(expression: string): Rational {
  if (expression.length > MAX_EXPRESSION_LENGTH) {
    throw new ToolError(
      "invalid_args",
      `expression too long: ${expression.length} characters, at most ${MAX_EXPRESSION_LENGTH}`,
    );
  }
  if (expression.trim() === "") throw new ToolError("invalid_args", "expression is empty");
  return new Parser(tokenize(expression)).parseAll();
}

/** "391", "0.3", or "1/3 (≈ 0.3333333333)" for fractions without a finite decimal form. */
export function formatRational(value: Rational): string {
  return toExactDecimal(value) ?? `${value.n}/${value.d} (≈ ${toApproxDecimal(value)})`;
}

const argsSchema = z.strictObject({
  expression: z
    .string()
    .max(MAX_EXPRESSION_LENGTH)
    .describe("Arithmetic expression, e.g. (17*23 - 4) / 3 or 2^10"),
});

/** Exact rational arithmetic: + - * / % ^ (integer exponents), unary minus, parentheses, sqrt. */
export const calculatorTool = defineTool({
  name: "calculator",
  description:
    "Evaluate an arithmetic expression exactly (no floating-point error). Supports numbers " +
    "(decimals, 1.5e3), + - * / % (remainder), ^ (integer powers), unary minus, parentheses and " +
    "sqrt() of perfect squares. Fractions that have no finite decimal form are returned as " +
    "p/q with an approximation.",
  readOnly: true,
  pure: true,
  argsSchema,
  run: (args) => Promise.resolve(formatRational(evaluate(args.expression))),
});
