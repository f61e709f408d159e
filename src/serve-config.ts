/**
 * What a pagent deployment hosts and grants, from its flags (or, for a serverless function, the
 * equivalent variables), its environment and its config file: one resolution shared by
 * `pagent serve` and the Lambda / fetch handlers (src/serverless/), so both grant alike.
 */
import { isIP } from "node:net";
import {
  DEFAULT_BASE_URL,
  emptyGrants,
  fixedGrants,
  mergeGrants,
  normalBaseUrl,
  secretHeaderLines,
  type Grants,
  type GrantSource,
} from "../services/capabilities.js";
import type { Credentials } from "../services/llm/chat.js";
import { SERVICE_SETS, type ServiceSet } from "../services/types.js";
import { commandDefinitions, realRoots } from "./commands/shared.js";
import type { Env, ResolvedConfig } from "./config.js";
import { UsageError } from "./errors.js";
import { fileGrantSource } from "./grants.js";
import { mcpDefinitions } from "./mcp.js";
import { providerSpec } from "./providers.js";

/** How Restate talks to the endpoint: one HTTP/2 stream both ways, or HTTP/1.1 request-response. */
export type Protocol = "bidirectional" | "request-response";
export const PROTOCOLS: readonly Protocol[] = ["bidirectional", "request-response"];

export interface ServeFlags {
  port?: string;
  host: string;
  register?: string;
  /** The address Restate should call (a load balancer in front of several endpoints); default: its own. */
  advertise?: string;
  identityKey: string[];
  allowUnsigned?: boolean;
  allowBaseUrl: string[];
  allowRoot: string[];
  allowHost: string[];
  grants?: string;
  services?: string;
  protocol?: string;
}

/** A deployment, resolved: which services, over which protocol, with what. */
export interface ServeSettings {
  services: ServiceSet;
  protocol: Protocol;
  /** Empty for a Job-only deployment: it needs no key and reads no provider variable. */
  credentials: Credentials;
  grants: GrantSource;
  identityKeys: string[];
}

/** 127.0.0.0/8, ::1 and localhost: only this machine can connect. */
export function isLoopback(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, "").toLowerCase();
  if (h === "localhost" || h === "::1") return true;
  const v4 = h.startsWith("::ffff:") ? h.slice(7) : h;
  return isIP(v4) === 4 && v4.startsWith("127.");
}

/**
 * What this endpoint grants jobs, from its own flags and config only. With `--grants FILE` (the
 * embedded endpoint) the file is the source and only explicit flags add to it; otherwise the base URL
 * defaults to the endpoint's own (--base-url, OPENAI_BASE_URL, config baseUrl, else OpenAI's) and the
 * config file's tools, providers, headers (and --header), allowRoots and allowHosts are granted.
 */
export function serveGrants(flags: ServeFlags, config: ResolvedConfig, cwd: string): Grants {
  const fromFlags = {
    baseUrls: flags.allowBaseUrl.map((url) => {
      if (!URL.canParse(url)) throw new UsageError(`--allow-base-url "${url}" is not a URL`);
      return normalBaseUrl(url);
    }),
    roots: realRoots(flags.allowRoot, cwd),
    hosts: flags.allowHost,
  };
  if (flags.grants !== undefined) return mergeGrants(emptyGrants(), fromFlags);
  return mergeGrants(emptyGrants(), {
    baseUrls:
      fromFlags.baseUrls.length > 0
        ? fromFlags.baseUrls
        : [normalBaseUrl(config.baseUrl ?? DEFAULT_BASE_URL)],
    commands: commandDefinitions(config.file, cwd),
    mcpServers: mcpDefinitions(config.file, undefined, cwd),
    // Its own profiles (which bring their headers) and headers, so a CLI with the same config names exactly these.
    providers: Object.entries(config.file.providers ?? {}).map(([name, p]) =>
      providerSpec(name, p),
    ),
    headers: secretHeaderLines(config.headers),
    roots: [...fromFlags.roots, ...realRoots(config.file.allowRoots ?? [], cwd)],
    hosts: [...fromFlags.hosts, ...(config.file.allowHosts ?? [])],
  });
}

/** `--services` / `--protocol` (PAGENT_SERVICES / PAGENT_PROTOCOL for a function): one of `all`. */
function oneOf<T extends string>(
  value: string | undefined,
  all: readonly T[],
  fallback: T,
  name: string,
): T {
  if (value === undefined) return fallback;
  if ((all as readonly string[]).includes(value)) return value as T;
  throw new UsageError(`${name} must be one of ${all.join(", ")}, not "${value}"`);
}

/**
 * The one resolution of a deployment. `problem` hears what goes wrong re-reading a grants file.
 * Grant flags on a Job-only deployment are refused: grants belong to the Tasks deployment, which
 * runs the tools and holds the key, and the Job asks it.
 */
export function resolveServe(
  flags: ServeFlags,
  config: ResolvedConfig,
  env: Env,
  cwd: string,
  problem: (line: string) => void = () => undefined,
): ServeSettings {
  const services = oneOf(flags.services, SERVICE_SETS, "all", "--services");
  const protocol = oneOf(flags.protocol, PROTOCOLS, "bidirectional", "--protocol");
  const identityKeys = [
    ...flags.identityKey,
    ...(env.RESTATE_IDENTITY_KEYS ?? "")
      .split(",")
      .map((k) => k.trim())
      .filter(Boolean),
  ];
  if (services === "job") {
    const named = [
      ...(flags.allowBaseUrl.length > 0 ? ["--allow-base-url"] : []),
      ...(flags.allowRoot.length > 0 ? ["--allow-root"] : []),
      ...(flags.allowHost.length > 0 ? ["--allow-host"] : []),
      ...(flags.grants !== undefined ? ["--grants"] : []),
    ];
    if (named.length > 0) {
      throw new UsageError(
        `${named.join(", ")} has no effect with --services job: grants belong to the Tasks deployment, which runs the tools and holds the key`,
      );
    }
    return {
      services,
      protocol,
      credentials: {},
      grants: fixedGrants(emptyGrants()),
      identityKeys,
    };
  }
  const granted = serveGrants(flags, config, cwd);
  let grants: GrantSource = fixedGrants(granted);
  if (flags.grants !== undefined) {
    const file = fileGrantSource(flags.grants, problem);
    // Merged again only when the file's grants changed: this runs on every check.
    let last: { from: Grants; merged: Grants } | undefined;
    grants = () => {
      const from = file();
      if (last?.from !== from) last = { from, merged: mergeGrants(from, granted) };
      return last.merged;
    };
  }
  return {
    services,
    protocol,
    credentials: { apiKey: config.apiKey, env },
    grants,
    identityKeys,
  };
}

/**
 * A bad key is a usage error (exit 2): the SDK's own parser decides, through `tryKey` (a throwaway
 * endpoint's handler made with that key; the SDK is passed in, so the CLI can load it lazily and a
 * function statically).
 */
export function checkIdentityKeys(keys: string[], tryKey: (key: string) => void): void {
  for (const key of keys) {
    if (!key.startsWith("publickeyv1_"))
      throw new UsageError(`identity key "${key}" must start with publickeyv1_`);
    try {
      tryKey(key);
    } catch (error) {
      throw new UsageError(
        `identity key "${key}" is not a valid Restate public key (${(error as Error).message}); give the public key matching the Restate server's request-identity private key`,
      );
    }
  }
}
