/**
 * The CLI's side of provider profiles and custom headers: the config's `providers` and `headers`,
 * `--provider`, `--model PROFILE:MODEL` and `--header`, resolved into what a job records (names,
 * non-secret settings, header values as written) and the environment variables the endpoint reads.
 */
import { z } from "zod";
import { literalSecret, varsOf } from "../services/llm/providers.js";
import type { ProviderSpec } from "../services/types.js";
import { UsageError } from "./errors.js";

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
/** RFC 9110 token: what a header name may be. */
const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

export const headersSchema = z.record(
  z.string().regex(HEADER_NAME, "a header name is letters, digits and -"),
  z.string(),
);

export const providerSchema = z
  .object({
    type: z.enum(["openai", "azure"]).optional(),
    baseUrl: z.string().url().optional(),
    headers: headersSchema.optional(),
    query: z.record(z.string(), z.string()).optional(),
    apiKeyEnv: z.string().regex(ENV_NAME, "an environment variable name").optional(),
    endpoint: z.string().url().optional(),
    deployment: z.string().min(1).optional(),
    apiVersion: z.string().min(1).optional(),
    /** Models served through this profile: `--model NAME` picks it; the first is `--provider`'s default. */
    models: z.array(z.string().min(1)).optional(),
  })
  .strict()
  .refine(
    (p) => p.type !== "azure" || (p.endpoint && p.deployment && p.apiVersion && !p.baseUrl),
    'an "azure" profile needs endpoint, deployment and apiVersion (and no baseUrl)',
  );

export type ProviderProfile = z.infer<typeof providerSchema>;

/** `Name: value` from `--header`. */
export function parseHeader(line: string): [string, string] {
  const colon = line.indexOf(":");
  const name = colon > 0 ? line.slice(0, colon).trim() : "";
  if (!HEADER_NAME.test(name)) {
    throw new UsageError(
      `--header "${line}" is not "Name: value"; pass e.g. --header "X-Title: my app"`,
    );
  }
  return [name, line.slice(colon + 1).trim()];
}

/** Headers must not hold a credential as written: the job records them. */
function checkHeaders(headers: Record<string, string>, where: string): Record<string, string> {
  for (const [name, value] of Object.entries(headers)) {
    const why = literalSecret(name, value);
    if (why) throw new UsageError(`${where}: ${why}`);
  }
  return headers;
}

/** A config profile as a job records it: the name and the settings that reach the endpoint. */
export function providerSpec(name: string, profile: ProviderProfile): ProviderSpec {
  const { models: _models, ...settings } = profile;
  checkHeaders(settings.headers ?? {}, `provider "${name}"`);
  return { name, ...settings };
}

export interface ModelChoice {
  model?: string;
  provider?: ProviderSpec;
}

/**
 * Which profile a job uses: `--model PROFILE:MODEL`, `--provider NAME` (its first model unless
 * `--model` names one), or the profile whose `models` lists `--model`; none when nothing names one.
 */
export function chooseProvider(
  profiles: Record<string, ProviderProfile>,
  model: string | undefined,
  providerFlag: string | undefined,
): ModelChoice {
  const names = Object.keys(profiles);
  const prefix = model?.includes(":") ? model.slice(0, model.indexOf(":")) : undefined;
  if (prefix !== undefined && Object.hasOwn(profiles, prefix)) {
    if (providerFlag !== undefined && providerFlag !== prefix) {
      throw new UsageError(
        `--model ${model} names provider "${prefix}" but --provider is "${providerFlag}"; choose one`,
      );
    }
    return {
      model: model!.slice(prefix.length + 1),
      provider: providerSpec(prefix, profiles[prefix]!),
    };
  }
  if (providerFlag !== undefined) {
    const profile = Object.hasOwn(profiles, providerFlag) ? profiles[providerFlag] : undefined;
    if (!profile) {
      throw new UsageError(
        `no provider "${providerFlag}" in the config's "providers"${names.length > 0 ? ` (it has ${names.join(", ")})` : ""}`,
      );
    }
    return { model: model ?? profile.models?.[0], provider: providerSpec(providerFlag, profile) };
  }
  const listing =
    model === undefined ? undefined : names.find((n) => profiles[n]!.models?.includes(model));
  return listing ? { model, provider: providerSpec(listing, profiles[listing]!) } : { model };
}

/** The job's own headers: the config's, then `--header` (a later one of the same name wins). */
export function jobHeaders(
  fromFile: Record<string, string> | undefined,
  flags: string[] | undefined,
): Record<string, string> {
  const headers = { ...fromFile };
  for (const line of flags ?? []) {
    const [name, value] = parseHeader(line);
    for (const existing of Object.keys(headers)) {
      if (existing.toLowerCase() === name.toLowerCase()) delete headers[existing];
    }
    headers[name] = value;
  }
  return checkHeaders(headers, "--header or config headers");
}

/**
 * Every environment variable the endpoint may read for this user's jobs: each profile's `apiKeyEnv`
 * and every `${VAR}` of the config's and the command's headers. The embedded endpoint is given these
 * (and restarted when one changes, like the key); no other variable is ever read for a job.
 */
export function secretEnvNames(
  profiles: Record<string, ProviderProfile>,
  headers: Record<string, string>,
  /** Other values that may read variables (MCP servers' `env` and `headers`). */
  templates: string[] = [],
): string[] {
  const names = new Set<string>();
  for (const value of templates) varsOf(value).forEach((v) => names.add(v));
  for (const profile of Object.values(profiles)) {
    if (profile.apiKeyEnv) names.add(profile.apiKeyEnv);
    for (const value of Object.values(profile.headers ?? {}))
      varsOf(value).forEach((v) => names.add(v));
  }
  for (const value of Object.values(headers)) varsOf(value).forEach((v) => names.add(v));
  return [...names].sort();
}
