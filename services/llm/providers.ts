/**
 * Where a job's LLM calls go and what they carry besides the body: base URL, extra headers, query
 * parameters and the key, from the job's model spec and (when it names one) its provider profile.
 *
 * A job records header values as written, `${VAR}` and `${VAR:-default}` unexpanded: only the
 * endpoint expands them, from its own environment, and only after the grants were checked
 * (services/capabilities.ts), so a request can never make the endpoint read a variable nobody granted.
 */
import type { ModelSpec, ProviderSpec } from "../types.js";

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
  const scheme = /^(Bearer|Basic|Token)\s+/i.exec(value)?.[0] ?? "";
  const variable = `MY_${name.replace(/[^A-Za-z0-9]/g, "_").toUpperCase()}`;
  return `header "${name}" holds a credential, and the job would record it as written: put it in an environment variable and write e.g. "${name}: ${scheme}\${${variable}}"`;
}

/** The URL a model's calls go to: the profile's (an Azure deployment's), else the job's, else OpenAI's. */
export function baseUrlOf(model: ModelSpec): string {
  const provider = model.provider;
  if (provider?.type === "azure") return `${azureBasePath(provider)}/${provider.deployment}`;
  return provider?.baseUrl ?? model.baseUrl ?? DEFAULT_BASE_URL;
}

function azureBasePath(provider: ProviderSpec): string {
  return `${provider.endpoint!.replace(/\/+$/, "")}/openai/deployments`;
}

/** Everything an OpenAI client needs for one model, with the secrets it holds for redaction. */
export interface ClientSettings {
  baseUrl: string;
  apiKey: string | undefined;
  /** Expanded. */
  headers: Record<string, string>;
  query: Record<string, string>;
  /** Azure OpenAI: where its deployments are, which one, and the `api-version` query value. */
  azure?: { basePath: string; deployment: string; apiVersion: string };
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
  const headers: Record<string, string> = {};
  for (const [name, template] of Object.entries({ ...provider?.headers, ...model.headers })) {
    headers[name] = expand(template, env);
  }
  const azure =
    provider?.type === "azure"
      ? {
          basePath: azureBasePath(provider),
          deployment: provider.deployment!,
          apiVersion: provider.apiVersion!,
        }
      : undefined;
  return {
    baseUrl: baseUrlOf(model),
    apiKey,
    headers,
    query: { ...provider?.query },
    ...(azure ? { azure } : {}),
    secrets: [apiKey, ...Object.values(headers)].filter((v): v is string => v !== undefined),
  };
}

/** An error body's message when it is not OpenAI's `{"error": {"message": ...}}`. */
function foreignErrorMessage(body: unknown): string | undefined {
  if (!body || typeof body !== "object" || Array.isArray(body)) return undefined;
  const fields = body as Record<string, unknown>;
  if (typeof fields.error === "object" && fields.error !== null) return undefined;
  for (const key of ["error", "message", "html-message", "detail"]) {
    if (typeof fields[key] === "string") return fields[key];
  }
  return JSON.stringify(body);
}

/**
 * `fetch` for the OpenAI client that rewrites a gateway's own error body (Portkey's
 * `{"status":"failure","message":...}`, LiteLLM's or a proxy's `{"error":"..."}`) into OpenAI's
 * shape: the client reads only `error.message`, and would report "400 status code (no body)".
 */
export const errorBodyFetch: typeof fetch = async (input, init) => {
  const response = await fetch(input, init);
  if (response.ok) return response;
  const text = await response.text();
  let message: string | undefined;
  try {
    message = foreignErrorMessage(JSON.parse(text));
  } catch {
    // Not JSON: the client shows the text itself.
  }
  const headers = new Headers(response.headers);
  // The body is decoded and may change length: the new response has no encoding of its own.
  headers.delete("content-encoding");
  headers.delete("content-length");
  return new Response(message !== undefined ? JSON.stringify({ error: { message } }) : text, {
    status: response.status,
    statusText: response.statusText,
    headers,
  });
};
