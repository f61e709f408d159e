/**
 * Where a job's LLM calls go and what they carry besides the body: base URL, extra headers, query
 * parameters and the key, from the job's model spec and (when it names one) its provider profile.
 *
 * A job records header values as written, `${VAR}` and `${VAR:-default}` unexpanded: only the
 * endpoint expands them, from its own environment, and only after the grants were checked
 * (services/capabilities.ts), so a request can never make the endpoint read a variable nobody granted.
 */
import type { ModelSpec } from "../types.js";

/** Where a job that names no base URL sends its LLM calls (and the key). */
export const DEFAULT_BASE_URL = "https://api.openai.com/v1";

/** The endpoint's environment variable that holds the key when a job's profile names none. */
export const DEFAULT_KEY_ENV = "OPENAI_API_KEY";

export type Env = Record<string, string | undefined>;

/** Credentials of the endpoint process; never journaled. */
export interface Credentials {
  /** The default key (OPENAI_API_KEY). */
  apiKey?: string;
  /** The endpoint's environment: profiles' `apiKeyEnv` and `${VAR}` in headers are read from it. */
  env?: Env;
}

const VAR = /\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g;

/** The environment variables a header value names with `${VAR}` / `${VAR:-default}`. */
export function varsOf(template: string): string[] {
  return [...template.matchAll(VAR)].map((m) => m[1]!);
}

/** `template` with every `${VAR}` replaced from `env`; throws naming the first unset one without a default. */
export function expand(template: string, env: Env): string {
  return template.replace(VAR, (_all, name: string, fallback: string | undefined) => {
    const value = env[name];
    if (value !== undefined && value !== "") return value;
    if (fallback !== undefined) return fallback;
    throw new Error(
      `\${${name}} is not set in the pagent endpoint's environment; set it where the endpoint runs or give a default (\${${name}:-value})`,
    );
  });
}

/**
 * Header names that carry credentials by convention. A value for one of these written out on the
 * command line or in a config would be recorded in the job (and the journal), so it must name a variable.
 */
const SECRET_HEADER =
  /^(authorization|proxy-authorization|api-key|cookie)$|auth|token|secret|key$/i;

/** Why `name: value` must not be recorded as written; undefined when it may. */
export function literalSecret(name: string, value: string): string | undefined {
  if (!SECRET_HEADER.test(name) || varsOf(value).length > 0) return undefined;
  return `header "${name}" holds a credential, which pagent records with the job only as a variable: put the value in an environment variable and write e.g. "${name}: \${MY_${name.replace(/[^A-Za-z0-9]/g, "_").toUpperCase()}}"`;
}

/** The URL a model's calls go to: the profile's (an Azure deployment's), else the job's, else OpenAI's. */
export function baseUrlOf(model: ModelSpec): string {
  const provider = model.provider;
  if (provider?.type === "azure") {
    return `${provider.endpoint!.replace(/\/+$/, "")}/openai/deployments/${encodeURIComponent(provider.deployment!)}`;
  }
  return provider?.baseUrl ?? model.baseUrl ?? DEFAULT_BASE_URL;
}

/** Everything an OpenAI client needs for one model, with the secrets it holds for redaction. */
export interface ClientSettings {
  baseUrl: string;
  apiKey: string | undefined;
  /** Expanded; `null` removes a header the client would otherwise send. */
  headers: Record<string, string | null>;
  query: Record<string, string>;
  /** The key and every expanded header value: cut out of every error, log line and event. */
  secrets: string[];
}

/**
 * The expanded settings of a model's calls. Call only for a model whose grants were checked: this
 * reads the environment variables its profile and headers name.
 */
export function clientSettings(model: ModelSpec, credentials: Credentials): ClientSettings {
  const provider = model.provider;
  const env = credentials.env ?? {};
  const apiKey = provider?.apiKeyEnv ? env[provider.apiKeyEnv] || undefined : credentials.apiKey;
  const headers: Record<string, string | null> = {};
  // Azure takes the key in `api-key`; a Bearer header beside it would send it twice.
  if (provider?.type === "azure" && apiKey)
    Object.assign(headers, { "api-key": apiKey, Authorization: null });
  for (const [name, template] of Object.entries({ ...provider?.headers, ...model.headers })) {
    headers[name] = expand(template, env);
  }
  const query: Record<string, string> = { ...provider?.query };
  if (provider?.type === "azure") query["api-version"] = provider.apiVersion!;
  const secrets = [apiKey, ...Object.values(headers)].filter(
    (value): value is string => typeof value === "string",
  );
  return { baseUrl: baseUrlOf(model), apiKey, headers, query, secrets };
}
