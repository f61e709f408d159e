// Rule-based tool planning and answering for the local model. The rules themselves are
// documented at the top of ../local-model.ts; this file implements them.

import { TextAnalysis } from "./analyses.js";
import { collapse, countWords, truncate } from "./text.js";

/** A bound tool as the planner sees it: OpenAI function name, description, JSON-schema params. */
export interface ToolSpec {
  name: string;
  description?: string;
  parameters?: Record<string, unknown>;
}

/** A tool call the planner decided on (ids are assigned by the model). */
export interface PlannedCall {
  name: string;
  args: Record<string, unknown>;
}

/** A tool call of the previous AI turn together with its result. */
export interface ToolOutcome {
  name: string;
  args: Record<string, unknown>;
  content: string;
  isError: boolean;
}

/** The tools the rules know, by the name they must be bound under. */
export type KnownTool =
  "calculator" | "clock" | "read_file" | "list_files" | "http_get" | "word_count";

interface Request {
  tool: KnownTool;
  arg: string;
  value: string;
  /** Offset in the prompt, so calls come out in the order the prompt asks for them. */
  pos: number;
}

/** Planned calls for bound tools, and what the prompt asked of tools that are not bound. */
export interface Plan {
  calls: PlannedCall[];
  unavailable: string[];
}

const isRecord = (v: unknown): v is Record<string, unknown> =>
  typeof v === "object" && v !== null && !Array.isArray(v);

// ---------------------------------------------------------------------------------------------
// Planning

const WORD_COUNT_INTENT =
  /\b(?:count(?:ing)?\s+(?:the\s+|all\s+(?:the\s+)?)?words|how\s+many\s+words|word\s*count|number\s+of\s+words)\b/iu;
const QUOTED = /"([^"]*)"|“([^”]*)”|`([^`]*)`|(?<![\p{L}\p{N}])'([^']+)'(?![\p{L}\p{N}])/gu;
const URL = /\bhttps?:\/\/[^\s<>"'`]+/giu;
const LIST_INTENT =
  /\b(?:list(?:\s+(?:all|the|of|my))*\s+(?:files|directory|dir|folder|contents)|what\s+files|which\s+files|show\s+(?:me\s+)?(?:the\s+)?files)\b/giu;
const LIST_DIR =
  /^[^.?!]*?\s(?:in|under|inside|within|of|at|from)\s+(?:the\s+)?(?:directory\s+|folder\s+|dir\s+)?("[^"]+"|'[^']+'|`[^`]+`|[^\s,;?!]+)/iu;
// Words that can follow "files in" without being a directory name.
const NOT_A_DIR = new Set(["this", "here", "current", "my", "your", "our", "it", "there", "that"]);
const TIME_INTENT =
  /\b(?:what\s+time|current\s+time|time\s+is\s+it|time\s+now|time\s+in|local\s+time|what'?s\s+the\s+time|what\s+is\s+the\s+time|date\s+today|today'?s\s+date|current\s+date|what\s+(?:is\s+)?the\s+date|what'?s\s+the\s+date|what\s+day\s+is\s+it)\b/iu;
const IANA_ZONE =
  /\b(?:Africa|America|Antarctica|Arctic|Asia|Atlantic|Australia|Europe|Indian|Pacific|Etc)\/[A-Za-z][A-Za-z0-9_+-]*(?:\/[A-Za-z][A-Za-z_]*)?/gu;
const UTC_WORD = /\b(?:UTC|GMT)\b/giu;
const READ_INTENT =
  /\b(?:read|reads|reading|show|open|summari[sz]e|summary\s+of|contents?\s+of|cat|display|print|view|look\s+at)\b/iu;
// Extension-less names people ask to read.
const KNOWN_FILES = new Set(["readme", "license", "changelog", "makefile", "dockerfile"]);
// Slash pairs of ordinary prose that are not paths.
const PROSE_SLASHES = new Set([
  "and/or",
  "yes/no",
  "on/off",
  "he/she",
  "his/her",
  "him/her",
  "w/o",
  "n/a",
  "true/false",
  "read/write",
]);
// Replaces consumed spans so later rules neither see them nor merge across them.
const MASK = "\uE000";

/** Plans tool calls for `prompt` using only `tools` (matched by name); see local-model.ts. */
export function planToolCalls(prompt: string, tools: readonly ToolSpec[]): Plan {
  const explicit = explicitCalls(prompt);
  const requests = findRequests(explicit.rest);
  const bound = new Map(tools.map((t) => [t.name, t]));
  const calls: PlannedCall[] = [];
  const seen = new Set<string>();
  const unavailable: string[] = [];
  for (const call of explicit.calls) {
    if (bound.has(call.name)) calls.push(call);
    else unavailable.push(`the prompt names ${call.name}, but no such tool is bound`);
  }
  for (const r of requests) {
    const tool = bound.get(r.tool);
    if (tool === undefined) {
      const what = `${describeRequest(r)}, but no ${r.tool} tool is bound`;
      if (!unavailable.includes(what)) unavailable.push(what);
      continue;
    }
    const call = { name: r.tool, args: argsFor(tool, r.arg, r.value) };
    const key = JSON.stringify(call);
    if (!seen.has(key)) {
      seen.add(key);
      calls.push(call);
    }
  }
  return { calls, unavailable };
}

// An MCP tool named with its JSON arguments: `server__tool {"a": 1}` (any tool name with "__").
const EXPLICIT_CALL =
  /(?<![A-Za-z0-9_-])([A-Za-z0-9-]+(?:_[A-Za-z0-9-]+)*__[A-Za-z0-9_-]+)\s*(?=\{)/gu;

/**
 * Calls the prompt spells out as `server__tool {json}`, and the prompt without them (so the other
 * rules do not read the JSON): the offline model's way to show MCP tools working.
 */
function explicitCalls(prompt: string): { calls: PlannedCall[]; rest: string } {
  const calls: PlannedCall[] = [];
  let rest = prompt;
  for (const m of prompt.matchAll(EXPLICIT_CALL)) {
    const from = m.index + m[0].length;
    // The shortest `{...}` after the name that is a JSON object.
    for (let end = prompt.indexOf("}", from); end !== -1; end = prompt.indexOf("}", end + 1)) {
      let args: unknown;
      try {
        args = JSON.parse(prompt.slice(from, end + 1));
      } catch {
        continue;
      }
      if (!isRecord(args)) break;
      calls.push({ name: m[1]!, args });
      rest = rest.slice(0, m.index) + MASK.repeat(end + 1 - m.index) + rest.slice(end + 1);
      break;
    }
  }
  return { calls, rest };
}

function findRequests(prompt: string): Request[] {
  const requests: Request[] = [];
  let masked = prompt;
  const mask = (start: number, length: number) => {
    masked = masked.slice(0, start) + MASK.repeat(length) + masked.slice(start + length);
  };

  // Quoted text is data for word_count, not instructions: mask it before the other rules run.
  const wordCount = WORD_COUNT_INTENT.exec(masked);
  if (wordCount) {
    let quoted = false;
    for (const m of masked.matchAll(QUOTED)) {
      const text = m[1] ?? m[2] ?? m[3] ?? m[4] ?? "";
      requests.push({ tool: "word_count", arg: "text", value: text, pos: m.index });
      mask(m.index, m[0].length);
      quoted = true;
    }
    const colon = quoted ? null : /:\s*(\S[\s\S]*)$/u.exec(masked.slice(wordCount.index));
    if (colon?.[1] !== undefined) {
      const start = wordCount.index + colon.index;
      requests.push({ tool: "word_count", arg: "text", value: colon[1].trim(), pos: start });
      mask(start, masked.length - start);
    }
  }

  for (const m of masked.matchAll(URL)) {
    const url = m[0].replace(/[.,;:!?)\]}]+$/u, "");
    requests.push({ tool: "http_get", arg: "url", value: url, pos: m.index });
    mask(m.index, url.length);
  }

  for (const m of masked.matchAll(LIST_INTENT)) {
    const after = masked.slice(m.index + m[0].length);
    const dir = LIST_DIR.exec(` ${after}`);
    let path = ".";
    if (dir?.[1] !== undefined) {
      const cleaned = cleanToken(dir[1]);
      if (cleaned !== "" && !NOT_A_DIR.has(cleaned.toLowerCase())) {
        path = cleaned;
        const at = m.index + m[0].length + dir.index + dir[0].length - 1 - dir[1].length;
        mask(at, dir[1].length);
      }
    }
    requests.push({ tool: "list_files", arg: "path", value: path, pos: m.index });
  }

  const time = TIME_INTENT.exec(masked);
  const zones: { zone: string; pos: number; length: number }[] = [];
  for (const m of masked.matchAll(IANA_ZONE)) {
    zones.push({ zone: m[0], pos: m.index, length: m[0].length });
  }
  if (time) {
    // "Etc/UTC" is already a zone: a UTC word or city inside a found zone is not another one.
    const addZone = (zone: string, pos: number, length: number) => {
      if (!zones.some((z) => pos < z.pos + z.length && z.pos < pos + length)) {
        zones.push({ zone, pos, length });
      }
    };
    for (const m of masked.matchAll(UTC_WORD)) addZone(m[0].toUpperCase(), m.index, m[0].length);
    for (const { city, pattern, zone } of cityZones()) {
      const at = pattern.exec(masked);
      if (at) addZone(zone, at.index, city.length);
    }
  }
  zones.sort((a, b) => a.pos - b.pos);
  for (const z of zones) mask(z.pos, z.length); // zone names look like paths; never read them
  if (time) {
    if (zones.length === 0) {
      requests.push({ tool: "clock", arg: "timezone", value: "UTC", pos: time.index });
    }
    for (const z of zones)
      requests.push({ tool: "clock", arg: "timezone", value: z.zone, pos: z.pos });
  }

  const readVerb = READ_INTENT.test(masked);
  const tokens = [...masked.matchAll(/"[^"\n]+"|`[^`\n]+`|[^\s\uE000]+/gu)];
  for (const m of tokens) {
    const token = cleanToken(m[0]);
    const kind = pathKind(token);
    if (kind === undefined) continue;
    if (kind === "dir" && readVerb) {
      requests.push({ tool: "list_files", arg: "path", value: token, pos: m.index });
    } else if (kind === "file" || (readVerb && kind !== "dir")) {
      requests.push({ tool: "read_file", arg: "path", value: token, pos: m.index });
    } else {
      continue;
    }
    mask(m.index, m[0].length);
  }
  // Any remaining token with a letter in it is prose (or a path we did not take): masking it
  // keeps "v1/2" or "x2+3" from turning into arithmetic.
  for (const m of masked.matchAll(/[^\s\uE000]+/gu)) {
    if (/\p{L}/u.test(m[0].replace(/[×÷]/gu, ""))) mask(m.index, m[0].length);
  }

  for (const { expression, pos } of arithmetic(masked)) {
    requests.push({ tool: "calculator", arg: "expression", value: expression, pos });
  }

  return requests.sort((a, b) => a.pos - b.pos);
}

/** Strips quotes, brackets and sentence punctuation around a token ("./a.txt," → "./a.txt"). */
function cleanToken(raw: string): string {
  let t = raw.replace(/^["'`“‘([{<]+/u, "").replace(/["'`”’)\]}>,;:!?]+$/u, "");
  if (!/^\.+$/u.test(t)) t = t.replace(/\.+$/u, "");
  return t;
}

/**
 * "file" for a name with a file extension (README.md, ./src/a.ts, .env); "dir" for a slash path
 * ending in "/"; "path" for an extension-less slash path or a well-known name (only read when
 * the prompt says read/show/open/summarize); undefined for anything else.
 */
function pathKind(token: string): "file" | "dir" | "path" | undefined {
  if (token === "" || /:\/\/|@/u.test(token) || !/\p{L}/u.test(token)) return undefined;
  if (PROSE_SLASHES.has(token.toLowerCase())) return undefined;
  // e.g, i.e, U.S: dotted abbreviations are not file names.
  if (/^(?:\p{L}\.)+\p{L}?$/u.test(token)) return undefined;
  if (!/^[\w\-./\\~ ]+$/u.test(token)) return undefined;
  const base = token.split(/[\\/]/u).pop() ?? "";
  if (/^[\w\-. ~]*\.[A-Za-z][A-Za-z0-9]{0,9}$/u.test(base) && !/\s$/u.test(base)) return "file";
  if (/[\\/]$/u.test(token) && token.length > 1) return "dir";
  if (/[\\/]/u.test(token) && !/\s/u.test(token)) return "path";
  if (KNOWN_FILES.has(token.toLowerCase())) return "path";
  return undefined;
}

const OPERATOR = /[-+*/%^×÷]/u;

/**
 * Arithmetic expressions in the (masked) prompt: runs of numbers, operators and parentheses with
 * at least one binary operator. Two numbers with only spaces between them start a new
 * expression; dates (2026-11-26, 11/26/2026) and clock times (12:00-13:00) are not arithmetic.
 */
function arithmetic(masked: string): { expression: string; pos: number }[] {
  const out: { expression: string; pos: number }[] = [];
  for (const run of masked.matchAll(/[\d.()+\-*/%^×÷ \t]+/gu)) {
    const tokens = [...run[0].matchAll(/\d+(?:\.\d+)?|\.\d+|[-+*/%^×÷]|[()]/gu)];
    let group: { text: string; at: number }[] = [];
    const groups: (typeof group)[] = [];
    for (const t of tokens) {
      const prev = group.at(-1)?.text;
      const operand = /^[\d.(]/u.test(t[0]);
      if (prev !== undefined && operand && /[\d.)]$/u.test(prev)) {
        groups.push(group);
        group = [];
      }
      group.push({ text: t[0], at: run.index + t.index });
    }
    groups.push(group);
    for (const g of groups) {
      const span = tidyExpression(g);
      if (span === undefined) continue;
      const { start, end } = span;
      // A neighbouring digit, separator or path character means this is part of something else
      // (1,000 or v1.2 or 12:00-13:00 or a/1/2), not an expression on its own.
      const before = masked.slice(Math.max(0, start - 2), start);
      const after = masked.slice(end, end + 2);
      if (/[\d.:/\\]$|\d,$/u.test(before) || /^[\d:/\\]|^[.,]\d/u.test(after)) continue;
      const text = masked.slice(start, end);
      if (/^\d{4}-\d{1,2}-\d{1,2}$|^\d{1,2}\/\d{1,2}\/\d{2,4}$/u.test(text)) continue;
      const expression = text.replace(/×/gu, "*").replace(/÷/gu, "/");
      if (!out.some((o) => o.expression === expression)) out.push({ expression, pos: start });
    }
  }
  return out;
}

function tidyExpression(
  group: { text: string; at: number }[],
): { start: number; end: number } | undefined {
  const g = [...group];
  const isOp = (t: string | undefined) => t !== undefined && OPERATOR.test(t) && t.length === 1;
  // Leading binary operators and trailing operators belong to the surrounding prose.
  while (g.length > 0 && isOp(g[0]?.text) && g[0]?.text !== "-") g.shift();
  while (g.length > 0 && (isOp(g.at(-1)?.text) || g.at(-1)?.text === "(")) g.pop();
  const count = (c: string) => g.filter((t) => t.text === c).length;
  while (g[0]?.text === "(" && count("(") > count(")")) g.shift();
  while (g.at(-1)?.text === ")" && count(")") > count("(")) g.pop();
  if (count("(") !== count(")") || g.length < 3) return undefined;
  const hasBinary = g.some(
    (t, i) => i > 0 && isOp(t.text) && /[\d.)]$/u.test(g[i - 1]?.text ?? ""),
  );
  const first = g[0];
  const last = g.at(-1);
  if (!hasBinary || first === undefined || last === undefined) return undefined;
  return { start: first.at, end: last.at + last.text.length };
}

let cityZoneCache: { city: string; pattern: RegExp; zone: string }[] | undefined;

/**
 * City names of the runtime's IANA zones ("New York" → America/New_York), longest first so
 * "Buenos Aires" wins over shorter overlaps. Matched case-sensitively to avoid prose words.
 */
function cityZones(): { city: string; pattern: RegExp; zone: string }[] {
  if (cityZoneCache === undefined) {
    const zones =
      typeof Intl.supportedValuesOf === "function" ? Intl.supportedValuesOf("timeZone") : [];
    cityZoneCache = zones
      .map((zone) => ({ zone, city: (zone.split("/").pop() ?? "").replace(/_/gu, " ") }))
      // Letters and spaces only, so the name needs no escaping inside the pattern.
      .filter(({ city, zone }) => zone.includes("/") && /^\p{Lu}[\p{L} ]+$/u.test(city))
      .sort((a, b) => b.city.length - a.city.length || (a.zone < b.zone ? -1 : 1))
      .map(({ city, zone }) => ({
        city,
        zone,
        pattern: new RegExp(`(?<![\\p{L}/_])${city}(?![\\p{L}/_])`, "u"),
      }));
  }
  return cityZoneCache;
}

/**
 * The argument object for a bound tool: the rule's argument name when the tool declares it (or
 * declares nothing), otherwise the tool's only (or only string) property.
 */
function argsFor(tool: ToolSpec, arg: string, value: string): Record<string, unknown> {
  const props = tool.parameters?.properties;
  if (!isRecord(props) || arg in props) return { [arg]: value };
  const keys = Object.keys(props);
  if (keys.length === 0) return {};
  const strings = keys.filter((k) => isRecord(props[k]) && props[k].type === "string");
  const only = keys.length === 1 ? keys[0] : strings.length === 1 ? strings[0] : undefined;
  return { [only ?? arg]: value };
}

function describeRequest(r: Request): string {
  switch (r.tool) {
    case "calculator":
      return `the prompt asks for ${r.value}`;
    case "clock":
      return `the prompt asks for the time in ${r.value}`;
    case "read_file":
      return `the prompt names the file ${r.value}`;
    case "list_files":
      return `the prompt asks for the files in ${r.value}`;
    case "http_get":
      return `the prompt names the URL ${r.value}`;
    case "word_count":
      return "the prompt asks for a word count";
  }
}

// ---------------------------------------------------------------------------------------------
// Answering

const CAPABILITIES: Record<KnownTool, string> = {
  calculator: "evaluate arithmetic such as 17*23 or (2+3)/4 (calculator)",
  clock: 'tell the time, e.g. "what time is it in Europe/Paris" (clock)',
  read_file: 'read a file named in the prompt, e.g. "read README.md" (read_file)',
  list_files: 'list a directory, e.g. "list files in src" (list_files)',
  http_get: "fetch an http(s) URL written in the prompt (http_get)",
  word_count: 'count the words of quoted text, e.g. count the words in "to be or not" (word_count)',
};

/** The answer when no rule matched: what the local model is and what it can do here. */
export function directAnswer(tools: readonly ToolSpec[], unavailable: readonly string[]): string {
  const known = tools.filter((t): t is ToolSpec & { name: KnownTool } => t.name in CAPABILITIES);
  const other = tools.filter((t) => !(t.name in CAPABILITIES)).map((t) => t.name);
  const parts = [
    "I am pagent's local model: deterministic rules, not an LLM, so I only act on prompts my rules recognise.",
  ];
  if (unavailable.length > 0) parts.push(`${capitalise(unavailable.join("; "))}.`);
  else parts.push("Nothing in this prompt matched a rule for the bound tools.");
  if (known.length > 0) {
    parts.push(`With the bound tools I can: ${known.map((t) => CAPABILITIES[t.name]).join("; ")}.`);
  }
  if (other.length > 0) parts.push(`I have no rule for the bound tools ${other.join(", ")}.`);
  return parts.join(" ");
}

/**
 * The final answer after a round of tool calls: one sentence per result, in call order, plus a
 * note for anything the prompt asked of tools that are not bound.
 */
export function finalAnswer(
  outcomes: readonly ToolOutcome[],
  prompt: string,
  unavailable: readonly string[],
): string {
  const summarise = /\bsummar/iu.test(prompt);
  const parts = outcomes.map((o) => sentenceFor(o, summarise));
  if (unavailable.length > 0) parts.push(`${capitalise(unavailable.join("; "))}.`);
  return parts.join(" ");
}

function sentenceFor(o: ToolOutcome, summarise: boolean): string {
  const content = collapse(o.content);
  const arg = (key: string) => {
    const v = o.args[key] ?? Object.values(o.args)[0];
    return typeof v === "string" ? v : v === undefined ? "" : JSON.stringify(v);
  };
  if (o.isError) {
    const detail = truncate(content.replace(/^(?:error|exception)\s*:?\s*/iu, ""), 200);
    const target = arg("expression") || arg("path") || arg("url") || arg("timezone");
    return end(`${o.name}${target ? ` (${target})` : ""} failed: ${detail || "no details"}`);
  }
  switch (o.name) {
    case "calculator":
      return end(content.includes("=") ? content : `${arg("expression")} = ${content}`);
    case "clock": {
      const zone = arg("timezone");
      return end(zone ? `The time in ${zone} is ${content}` : `The current time is ${content}`);
    }
    case "word_count": {
      const text = truncate(collapse(arg("text")), 60);
      return /^\d+$/u.test(content)
        ? end(`"${text}" has ${content} word${content === "1" ? "" : "s"}`)
        : end(`Word count of "${text}": ${truncate(content, 200)}`);
    }
    case "read_file": {
      const path = arg("path");
      if (summarise) return end(`Summary of ${path}: ${new TextAnalysis(o.content).summary()}`);
      return end(`${path} (${countWords(o.content)} words) begins: "${truncate(content, 200)}"`);
    }
    case "list_files": {
      const entries = listEntries(o.content);
      const shown = entries.slice(0, 20).join(", ");
      const more = entries.length > 20 ? `, and ${entries.length - 20} more` : "";
      return end(
        `${arg("path") || "The directory"} contains ${entries.length} entr${entries.length === 1 ? "y" : "ies"}${entries.length > 0 ? `: ${shown}${more}` : ""}`,
      );
    }
    case "http_get":
      return end(`${arg("url")} returned: "${truncate(content, 200)}"`);
    default:
      return end(`${o.name} returned: ${truncate(content, 200)}`);
  }
}

function listEntries(content: string): string[] {
  try {
    const parsed: unknown = JSON.parse(content);
    const list = Array.isArray(parsed)
      ? parsed
      : isRecord(parsed) && Array.isArray(parsed.entries)
        ? parsed.entries
        : isRecord(parsed) && Array.isArray(parsed.files)
          ? parsed.files
          : undefined;
    if (list) {
      return list.map((e) =>
        typeof e === "string"
          ? e
          : isRecord(e) && typeof e.name === "string"
            ? e.name
            : JSON.stringify(e),
      );
    }
  } catch {
    // Not JSON: one entry per line.
  }
  return content
    .split(/\r?\n/u)
    .map((l) => l.trim())
    .filter((l) => l !== "");
}

function end(s: string): string {
  return /[.!?…]["'”’)\]]*$/u.test(s) ? s : `${s}.`;
}

function capitalise(s: string): string {
  return s.charAt(0).toUpperCase() + s.slice(1);
}
