/**
 * What the endpoint is allowed to do on a job's behalf: which base URLs may receive the key, which
 * command tools exist, which directories and hosts the tools may touch. A job request can only name
 * and narrow these, never add to them: anyone who reaches Restate's ingress can write a request, but
 * only the endpoint's user (embedded) or operator (`pagent serve`) grants capabilities.
 *
 * Each kind of capability is one entry of {@link KINDS}; a new kind (MCP servers, provider profiles)
 * is one more entry and one more field of {@link Grants}, and every check, merge and message follows.
 */
import path from "node:path";
import { realpathSync } from "node:fs";
import { isInside } from "./tools/path-guard.js";
import { parseAllowEntry } from "./tools/http-get.js";
import type { CommandToolConfig } from "./tools/command.js";
import { baseUrlOf, varsOf } from "./llm/providers.js";
import type { McpServerSpec } from "./mcp/spec.js";
import { LOCAL_MODEL_NAME, type ModelSpec, type ProviderSpec } from "./types.js";

export { DEFAULT_BASE_URL } from "./llm/providers.js";

/** Everything an endpoint was granted. Plain JSON (the embedded CLI writes it to a file); never a secret. */
export interface Grants {
  /** Base URLs that may receive the endpoint's key (normalised, see {@link normalBaseUrl}). */
  baseUrls: string[];
  /** Command tools, as full definitions: a request must carry exactly one of these. */
  commands: CommandToolConfig[];
  /** Absolute directories; a job's `--allow-root` must be one of them or inside one. */
  roots: string[];
  /** `host` or `host:port`; a job's `--allow-host` must be one of them (a bare host covers every port). */
  hosts: string[];
  /**
   * Headers whose values name the endpoint's environment variables (`Name: Bearer ${VAR}`), as
   * written: only these may make the endpoint read a variable. Headers without `${...}` need no grant.
   */
  headers: string[];
  /** Provider profiles, as full definitions: a request must carry exactly one of these. */
  providers: ProviderSpec[];
  /** MCP servers, as full definitions (`${VAR}` unexpanded): a request must carry exactly one of these. */
  mcpServers: McpServerSpec[];
}

export type CapabilityKind = keyof Grants;
/** What a request asks for, in the shape of {@link Grants}. */
export type Asked = Partial<Grants>;

interface Kind<T> {
  /** What one item is called in a refusal. */
  noun: string;
  /** How the operator of `pagent serve` grants one. */
  grantWith: string;
  /** The item as a refusal shows it. */
  show(item: T): string;
  /** Identity, for merging grants without duplicates. */
  key(item: T): string;
  /** True when `granted` allows `requested`, a narrowing of it; without it, only an equal key does. */
  covers?(granted: T, requested: T): boolean;
}

/** JSON with object keys sorted, so two equal definitions have one text whatever their key order. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) =>
    v && typeof v === "object" && !Array.isArray(v)
      ? Object.fromEntries(
          Object.entries(v as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : 1)),
        )
      : v,
  );
}

/** `http://h:1/v1/` and `http://H:1/v1` are one base URL; anything unparsable stays as written (and matches nothing else). */
export function normalBaseUrl(url: string): string {
  try {
    return new URL(url).href.replace(/\/+$/, "");
  } catch {
    return url;
  }
}

function hostCovers(granted: string, requested: string): boolean {
  const g = parseAllowEntry(granted);
  const r = parseAllowEntry(requested);
  const host = (h: string) => h.toLowerCase().replace(/\.$/, "");
  return host(g.host) === host(r.host) && (g.port === undefined || g.port === r.port);
}

const baseUrls: Kind<string> = {
  noun: "base URL",
  grantWith: "pagent serve --allow-base-url URL",
  show: (url) => url,
  key: normalBaseUrl,
};

const commands: Kind<CommandToolConfig> = {
  noun: "command tool",
  grantWith: "the `tools` of the config file `pagent serve` reads, run from the same directory",
  show: (c) => `"${c.name}" (argv ${JSON.stringify(c.argv)}, cwd ${c.cwd ?? "unset"})`,
  key: canonicalJson,
};

const roots: Kind<string> = {
  noun: "directory (--allow-root)",
  grantWith: "pagent serve --allow-root DIR",
  show: (dir) => dir,
  key: (dir) => path.resolve(dir),
  covers: (granted, requested) => isInside(path.resolve(granted), path.resolve(requested)),
};

const hosts: Kind<string> = {
  noun: "host (--allow-host)",
  grantWith: "pagent serve --allow-host HOST",
  show: (host) => host,
  key: (host) => host.trim().toLowerCase(),
  covers: hostCovers,
};

const headers: Kind<string> = {
  noun: "header",
  grantWith: "the `headers` of the config file `pagent serve` reads",
  show: (header) => `"${header}"`,
  // Header names are case-insensitive; values are compared as written.
  key: (header) => header.replace(/^[^:]*/, (name) => name.trim().toLowerCase()),
};

const providers: Kind<ProviderSpec> = {
  noun: "provider profile",
  grantWith: "the `providers` of the config file `pagent serve` reads",
  show: (p) => `"${p.name}" (${canonicalJson(p)})`,
  key: canonicalJson,
};

const mcpServers: Kind<McpServerSpec> = {
  noun: "MCP server",
  grantWith: "the `mcpServers` of the config file (or --mcp-config file) `pagent serve` reads",
  show: (s) => `"${s.name}" (${canonicalJson(s)})`,
  key: canonicalJson,
};

/** Every kind of capability. Adding one: a field of Grants and an entry here. */
export const KINDS: { [K in CapabilityKind]: Kind<Grants[K][number]> } = {
  baseUrls,
  commands,
  roots,
  hosts,
  headers,
  providers,
  mcpServers,
};

const kindNames = Object.keys(KINDS) as CapabilityKind[];

export function emptyGrants(): Grants {
  return Object.fromEntries(kindNames.map((name) => [name, []])) as unknown as Grants;
}

/** `a` plus whatever of `b` it does not hold yet, in order; `a` itself is not changed. */
export function mergeGrants(a: Grants, b: Asked): Grants {
  const merged = emptyGrants();
  for (const name of kindNames) {
    const kind = KINDS[name] as Kind<unknown>;
    const seen = new Set<string>();
    const out: unknown[] = [];
    for (const item of [...(a[name] ?? []), ...(b[name] ?? [])] as unknown[]) {
      const key = kind.key(item);
      if (seen.has(key)) continue;
      seen.add(key);
      out.push(item);
    }
    (merged as Record<CapabilityKind, unknown[]>)[name] = out;
  }
  return merged;
}

/** The keys of each kind a grant set holds, computed once per set: a source returns the same set until it changes. */
const grantedKeys = new WeakMap<Grants, Map<CapabilityKind, Set<string>>>();

function isGranted(grants: Grants, name: CapabilityKind, item: unknown): boolean {
  const kind = KINDS[name] as Kind<unknown>;
  const granted = grants[name] as unknown[];
  if (kind.covers) return granted.some((g) => kind.covers!(g, item));
  let keys = grantedKeys.get(grants);
  if (!keys) grantedKeys.set(grants, (keys = new Map<CapabilityKind, Set<string>>()));
  let set = keys.get(name);
  if (!set) keys.set(name, (set = new Set(granted.map((g) => kind.key(g)))));
  return set.has(kind.key(item));
}

/** The first thing `asked` names that `grants` does not allow, as a one-line refusal; undefined if all is granted. */
export function refusal(grants: Grants, asked: Asked): string | undefined {
  for (const name of kindNames) {
    const kind = KINDS[name] as Kind<unknown>;
    for (const item of (asked[name] ?? []) as unknown[]) {
      if (isGranted(grants, name, item)) continue;
      return `${kind.noun} ${kind.show(item)} is not granted to this pagent endpoint, so nothing was sent or run; its operator can grant it with ${kind.grantWith} (an embedded endpoint is granted what its own user's pagent commands use)`;
    }
  }
  return undefined;
}

/** The headers of `headers` that name environment variables, as granted: `Name: value`. */
export function secretHeaderLines(headers: Record<string, string> | undefined): string[] {
  return Object.entries(headers ?? {})
    .filter(([, value]) => varsOf(value).length > 0)
    .map(([name, value]) => `${name}: ${value}`);
}

/**
 * What a model's calls use: its provider profile (which fixes the URL, the key's variable and the
 * profile's headers), else the base URL that receives the default key; and its own headers that read
 * variables. Nothing for the offline model.
 */
export function askedByModel(model: ModelSpec): Asked {
  if (model.name === LOCAL_MODEL_NAME) return {};
  const headers = secretHeaderLines(model.headers);
  return {
    ...(model.provider
      ? { providers: [model.provider] }
      : { baseUrls: [normalBaseUrl(baseUrlOf(model))] }),
    ...(headers.length > 0 ? { headers } : {}),
  };
}

/**
 * A root as the file tools will use it: they follow symlinks, so a symlink inside a granted root
 * that points outside it is judged by where it leads. A root that does not exist contains nothing.
 */
function realRoot(root: string): string {
  try {
    return realpathSync(root);
  } catch {
    return path.resolve(root);
  }
}

/** The built-in tools that reach a job's directories and hosts; no other tool uses them. */
const ROOT_TOOLS = ["read_file", "list_files"];
const HOST_TOOLS = ["http_get"];

/**
 * What an agent job's tools reach: its enabled command definitions, and its roots and hosts when a
 * tool that uses them is enabled (so `--tools calculator` needs no root granted).
 */
export function askedByTools(tools: {
  enabled: string[];
  commands: CommandToolConfig[];
  allowRoots: string[];
  allowHosts: string[];
  mcp?: McpServerSpec[];
}): Asked {
  const uses = (names: string[]) => names.some((name) => tools.enabled.includes(name));
  return {
    commands: tools.commands.filter((c) => tools.enabled.includes(c.name)),
    roots: uses(ROOT_TOOLS) ? tools.allowRoots.map(realRoot) : [],
    hosts: uses(HOST_TOOLS) ? tools.allowHosts : [],
    ...(tools.mcp?.length ? { mcpServers: tools.mcp } : {}),
  };
}

/** Where an endpoint's grants come from; read on every check, so a source may change over time. */
export type GrantSource = () => Grants;

export const fixedGrants =
  (grants: Grants): GrantSource =>
  () =>
    grants;
