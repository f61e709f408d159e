import { readFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { z } from "zod";
import { DEFAULT_CHUNK_TOKENS, MIN_CHUNK_TOKENS } from "../services/chunking.js";
import {
  MAX_REPLY_BYTES_LIMIT,
  MAX_TASK_TIMEOUT_MS,
  type Price,
  type ProviderSpec,
} from "../services/types.js";
import { UsageError } from "./errors.js";
import {
  chooseProvider,
  headersSchema,
  jobHeaders,
  providerSchema,
  secretEnvNames,
} from "./providers.js";
import type { RuntimeMode } from "./restate/runtime.js";
import { loadMcpConfig, mcpServersSchema, mcpTemplates } from "./mcp.js";

const analysisSchema = z.object({
  instruction: z.string().min(1),
  schema: z.record(z.string(), z.unknown()).optional(),
  /** How a long input's chunk results become one answer (default: merge them, same schema). */
  reduce: z.string().min(1).optional(),
});

const chunkTokensSchema = z.number().int().min(MIN_CHUNK_TOKENS);

const commandToolSchema = z.object({
  description: z.string().default("a user command"),
  argv: z.array(z.string()).min(1),
  timeoutMs: z.number().int().positive().optional(),
  schema: z.record(z.string(), z.unknown()).optional(),
  /** Where it runs; relative to the directory of the command (default: that directory). */
  cwd: z.string().optional(),
});

/** `pagent.config.json`: everything optional; flags and environment win over it. */
export const configFileSchema = z
  .object({
    model: z.string().optional(),
    baseUrl: z.string().url().optional(),
    /** Sent with every LLM request; `${VAR}` is expanded by the endpoint from its environment. */
    headers: headersSchema.optional(),
    /** Named provider profiles: `--provider NAME` or `--model NAME:MODEL` picks one. */
    providers: z
      .record(z.string().regex(/^[^:]+$/, "a profile name has no colon"), providerSchema)
      .optional(),
    analyses: z.record(z.string(), analysisSchema).optional(),
    tools: z.record(z.string(), commandToolSchema).optional(),
    /** MCP servers, in the Claude Desktop / Claude Code / Cursor format. */
    mcpServers: mcpServersSchema.optional(),
    concurrency: z.number().int().positive().optional(),
    maxBytes: z.number().int().positive().optional(),
    /** `analyze` splits an input longer than this many (estimated) tokens into chunks. */
    chunkTokens: chunkTokensSchema.optional(),
    /** `chunkTokens` by model name, for models with a smaller (or larger) context. */
    modelChunkTokens: z.record(z.string(), chunkTokensSchema).optional(),
    retries: z.number().int().min(1).optional(),
    taskTimeout: z.string().optional(),
    maxReplyBytes: z.number().int().positive().max(MAX_REPLY_BYTES_LIMIT).optional(),
    timeout: z.string().optional(),
    rpm: z.number().int().positive().optional(),
    tpm: z.number().int().positive().optional(),
    maxTokensTotal: z.number().int().positive().optional(),
    prices: z
      .record(
        z.string(),
        z.object({ input: z.number().nonnegative(), output: z.number().nonnegative() }).strict(),
      )
      .optional(),
    retention: z.string().optional(),
    allowRoots: z.array(z.string()).optional(),
    allowHosts: z.array(z.string()).optional(),
    restateUrl: z.string().optional(),
    adminUrl: z.string().optional(),
  })
  .strict();

export type ConfigFile = z.infer<typeof configFileSchema>;

/** Flags common to every command, as commander parsed them. */
export interface GlobalFlags {
  ephemeral?: boolean;
  restateUrl?: string;
  adminUrl?: string;
  json?: boolean;
  ndjson?: boolean;
  quiet?: boolean;
  verbose?: boolean;
  color?: boolean;
  config?: string;
  /** A file with `mcpServers` (e.g. an existing `.mcp.json`), added to the config's. */
  mcpConfig?: string;
  /** `--mcp a,b`: the MCP servers a job may use (default: every configured one). */
  mcp?: string;
  model?: string;
  provider?: string;
  header?: string[];
  baseUrl?: string;
  retries?: string;
  taskTimeout?: string;
  timeout?: string;
  rpm?: string;
  tpm?: string;
  maxTokensTotal?: string;
  retention?: string;
  /** `analyze --chunk-tokens N`. */
  chunkTokens?: string;
}

export type OutputMode = "human" | "json" | "ndjson";

export interface ResolvedConfig {
  mode: RuntimeMode;
  home: string;
  ingressUrls: string[];
  adminUrls: string[];
  model?: string;
  baseUrl?: string;
  /** The provider profile the job's model is reached through (`--provider`, `--model NAME:MODEL`). */
  provider?: ProviderSpec;
  /** The job's own headers, values as written (`${VAR}` unexpanded). */
  headers: Record<string, string>;
  apiKey?: string;
  /**
   * The variables the endpoint may read for this user's jobs (profiles' `apiKeyEnv`, `${VAR}` in
   * headers), with their values here: the embedded endpoint is started with them. Never written down.
   */
  secretEnv: Record<string, string>;
  output: OutputMode;
  quiet: boolean;
  verbose: boolean;
  retries: number;
  taskTimeoutMs: number;
  /** The largest LLM reply a task may journal (config `maxReplyBytes`, env PAGENT_MAX_REPLY_BYTES). */
  maxReplyBytes?: number;
  /** `--timeout`: the whole job's time limit. */
  timeoutMs?: number;
  /** Provider limits a job asks the endpoint for (requests and tokens per minute). */
  rpm?: number;
  tpm?: number;
  /** `--max-tokens-total`: the job's (or batch's) token budget. */
  maxTokensTotal?: number;
  /** USD per million input/output tokens, by model name. */
  prices: Record<string, Price>;
  /** How long finished jobs stay attachable. */
  retentionMs: number;
  /** `analyze` chunks an input longer than this many estimated tokens (services/chunking.ts). */
  chunkTokens: number;
  file: ConfigFile;
}

export type Env = Record<string, string | undefined>;

const truthy = (value: string | undefined) =>
  value !== undefined && /^(1|true|yes|on)$/i.test(value);

/** Parses `90s`, `2m`, `500ms` or a number of seconds. */
export function parseDuration(value: string, what: string): number {
  const match = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)?$/.exec(value.trim());
  if (!match) {
    throw new UsageError(`${what} must be a duration like 30s, 2m, 7d or 500ms, not "${value}"`);
  }
  const factors: Record<string, number> = {
    ms: 1,
    s: 1000,
    m: 60_000,
    h: 3_600_000,
    d: 86_400_000,
  };
  return Math.round(Number(match[1]) * factors[match[2] ?? "s"]!);
}

export function parsePositiveDuration(value: string, what: string): number {
  const ms = parseDuration(value, what);
  if (ms <= 0) throw new UsageError(`${what} must be longer than 0, not "${value}"`);
  return ms;
}

export function parsePositiveInt(value: string, what: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1)
    throw new UsageError(`${what} must be a whole number of at least 1, not "${value}"`);
  return n;
}

function splitUrls(value: string | undefined): string[] {
  return (value ?? "")
    .split(",")
    .map((u) => u.trim())
    .filter(Boolean);
}

function maxReplyBytes(value: string | undefined): number | undefined {
  if (!value) return undefined;
  const n = parsePositiveInt(value, "PAGENT_MAX_REPLY_BYTES");
  if (n > MAX_REPLY_BYTES_LIMIT) {
    throw new UsageError(
      `PAGENT_MAX_REPLY_BYTES may be at most ${MAX_REPLY_BYTES_LIMIT} (16 MiB: Restate refuses bigger journal entries), not "${value}"`,
    );
  }
  return n;
}

function chunkTokens(n: number): number {
  if (n < MIN_CHUNK_TOKENS)
    throw new UsageError(
      `--chunk-tokens must be at least ${MIN_CHUNK_TOKENS} (smaller chunks leave the model a few sentences each), not ${n}`,
    );
  return n;
}

/** Where pagent keeps its embedded server: $PAGENT_HOME, else $XDG_STATE_HOME/pagent, else ~/.local/state/pagent. */
export function resolveHome(env: Env): string {
  if (env.PAGENT_HOME) return path.resolve(env.PAGENT_HOME);
  const stateHome = env.XDG_STATE_HOME || path.join(env.HOME || os.homedir(), ".local", "state");
  return path.join(stateHome, "pagent");
}

/** One pure function for every setting: flag > environment > config file > default. */
export function resolveConfig(flags: GlobalFlags, rawEnv: Env, file: ConfigFile): ResolvedConfig {
  // An exported-but-empty variable (FOO= in a CI file) means "not set", as it does for most tools.
  const env: Env = Object.fromEntries(Object.entries(rawEnv).filter(([, value]) => value !== ""));
  const ephemeral = flags.ephemeral ?? truthy(env.PAGENT_EPHEMERAL);
  // --ephemeral on the command line beats a server named only in the config file.
  const fileUrls = ephemeral ? {} : { restateUrl: file.restateUrl, adminUrl: file.adminUrl };
  const ingressUrls = splitUrls(flags.restateUrl ?? env.RESTATE_INGRESS_URL ?? fileUrls.restateUrl);
  const adminUrls = splitUrls(flags.adminUrl ?? env.RESTATE_ADMIN_URL ?? fileUrls.adminUrl);
  for (const url of [...ingressUrls, ...adminUrls]) {
    // unix:/path names a unix socket (what `pagent cluster up` prints for its nodes).
    if (url.startsWith("unix:/")) continue;
    if (!URL.canParse(url) || !/^https?:$/.test(new URL(url).protocol)) {
      throw new UsageError(
        `"${url}" is not an http(s) URL or a unix:/path socket; pass e.g. --restate-url http://127.0.0.1:8080`,
      );
    }
  }
  if (ephemeral && ingressUrls.length > 0) {
    throw new UsageError("--ephemeral and --restate-url exclude each other; choose one");
  }
  if (flags.json && flags.ndjson)
    throw new UsageError("--json and --ndjson exclude each other; choose one");
  const baseUrl = flags.baseUrl ?? env.OPENAI_BASE_URL ?? file.baseUrl;
  if (
    baseUrl !== undefined &&
    (!URL.canParse(baseUrl) || !/^https?:$/.test(new URL(baseUrl).protocol))
  ) {
    throw new UsageError(
      `--base-url "${baseUrl}" is not a URL; pass e.g. http://127.0.0.1:11434/v1`,
    );
  }
  const profiles = file.providers ?? {};
  const choice = chooseProvider(
    profiles,
    flags.model ?? env.PAGENT_MODEL ?? file.model,
    flags.provider,
  );
  if (choice.provider && flags.baseUrl !== undefined) {
    throw new UsageError(
      `--base-url and provider "${choice.provider.name}" exclude each other: the profile says where its calls go`,
    );
  }
  const headers = jobHeaders(file.headers, flags.header);
  const taskTimeout = flags.taskTimeout ?? env.PAGENT_TASK_TIMEOUT ?? file.taskTimeout;
  const taskTimeoutMs =
    taskTimeout !== undefined ? parsePositiveDuration(taskTimeout, "--task-timeout") : 120_000;
  if (taskTimeoutMs > MAX_TASK_TIMEOUT_MS) {
    throw new UsageError(
      `--task-timeout may be at most ${MAX_TASK_TIMEOUT_MS / 60_000}m (Restate stops a step that stays silent much longer), not "${taskTimeout}"`,
    );
  }
  const timeout = flags.timeout ?? file.timeout;
  const retention = flags.retention ?? env.PAGENT_RETENTION ?? file.retention;
  const count = (flag: string | undefined, envValue: string | undefined, what: string) =>
    flag !== undefined
      ? parsePositiveInt(flag, what)
      : envValue
        ? parsePositiveInt(envValue, `${what} (from the environment)`)
        : undefined;
  return {
    mode: ephemeral ? "ephemeral" : ingressUrls.length > 0 ? "connect" : "embedded",
    home: resolveHome(env),
    ingressUrls,
    adminUrls,
    model: choice.model,
    baseUrl,
    ...(choice.provider ? { provider: choice.provider } : {}),
    headers,
    apiKey: env.OPENAI_API_KEY || undefined,
    secretEnv: Object.fromEntries(
      secretEnvNames(profiles, headers, mcpTemplates(file)).flatMap((name) =>
        env[name] !== undefined ? [[name, env[name]]] : [],
      ),
    ),
    output: flags.ndjson ? "ndjson" : flags.json ? "json" : "human",
    quiet: flags.quiet ?? false,
    verbose: flags.verbose ?? false,
    retries:
      flags.retries !== undefined
        ? parsePositiveInt(flags.retries, "--retries")
        : (file.retries ?? 5),
    taskTimeoutMs,
    maxReplyBytes: maxReplyBytes(env.PAGENT_MAX_REPLY_BYTES) ?? file.maxReplyBytes,
    timeoutMs: timeout !== undefined ? parsePositiveDuration(timeout, "--timeout") : undefined,
    rpm: count(flags.rpm, env.PAGENT_RPM, "--rpm") ?? file.rpm,
    tpm: count(flags.tpm, env.PAGENT_TPM, "--tpm") ?? file.tpm,
    maxTokensTotal:
      count(flags.maxTokensTotal, undefined, "--max-tokens-total") ?? file.maxTokensTotal,
    prices: file.prices ?? {},
    retentionMs: retention !== undefined ? parseDuration(retention, "--retention") : 7 * 86_400_000,
    chunkTokens: chunkTokens(
      count(flags.chunkTokens, env.PAGENT_CHUNK_TOKENS, "--chunk-tokens") ??
        (choice.model !== undefined ? file.modelChunkTokens?.[choice.model] : undefined) ??
        file.chunkTokens ??
        DEFAULT_CHUNK_TOKENS,
    ),
    file,
  };
}

/** The config file with the `mcpServers` of `--mcp-config FILE` added (the file's win on a shared name). */
export function withMcpConfig(
  file: ConfigFile,
  mcpConfig: string | undefined,
  cwd: string,
): ConfigFile {
  if (mcpConfig === undefined) return file;
  return { ...file, mcpServers: { ...file.mcpServers, ...loadMcpConfig(mcpConfig, cwd) } };
}

/** Reads the config file: `--config PATH` must exist; `./pagent.config.json` is used when present. */
export function loadConfigFile(explicitPath: string | undefined, cwd: string): ConfigFile {
  const file = explicitPath
    ? path.resolve(cwd, explicitPath)
    : path.join(cwd, "pagent.config.json");
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (error) {
    if (!explicitPath && (error as NodeJS.ErrnoException).code === "ENOENT") return {};
    throw new UsageError(`cannot read config file ${file}: ${(error as Error).message}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new UsageError(`config file ${file} is not valid JSON: ${(error as Error).message}`);
  }
  const parsed = configFileSchema.safeParse(json);
  if (!parsed.success) {
    throw new UsageError(
      `config file ${file} is invalid: ${z.prettifyError(parsed.error).replace(/\n/g, "; ")}`,
    );
  }
  return parsed.data;
}
