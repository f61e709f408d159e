import { isIP } from "node:net";
import type { Command } from "commander";
import {
  DEFAULT_BASE_URL,
  emptyGrants,
  fixedGrants,
  mergeGrants,
  normalBaseUrl,
  secretHeaderLines,
  type Grants,
  type GrantSource,
} from "../../services/capabilities.js";
import { parsePositiveInt, type ResolvedConfig } from "../config.js";
import { commandContext, type App } from "../context.js";
import { EXIT, UsageError } from "../errors.js";
import { fileGrantSource } from "../grants.js";
import { providerSpec } from "../providers.js";
import { AdminClient } from "../restate/admin.js";
import { hostEndpoint } from "../restate/endpoint.js";
import { serveView } from "../output/views.js";
import { resumeStuckInvocations } from "../restate/endpoint-process.js";
import { commandDefinitions, realRoots } from "./shared.js";

export interface ServeFlags {
  port?: string;
  host: string;
  register?: string;
  identityKey: string[];
  allowUnsigned?: boolean;
  allowBaseUrl: string[];
  allowRoot: string[];
  allowHost: string[];
  grants?: string;
}

const collect = (v: string, all: string[]) => [...all, v];

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
    // Its own profiles (which bring their headers) and headers, so a CLI with the same config names exactly these.
    providers: Object.entries(config.file.providers ?? {}).map(([name, p]) =>
      providerSpec(name, p),
    ),
    headers: secretHeaderLines(config.headers),
    roots: [...fromFlags.roots, ...realRoots(config.file.allowRoots ?? [], cwd)],
    hosts: [...fromFlags.hosts, ...(config.file.allowHosts ?? [])],
  });
}

export function registerServe(program: Command, app: App): void {
  program
    .command("serve")
    .description("run pagent's service endpoint alone, for a remote Restate server or cluster")
    .option("--port <n>", "port to listen on (default 9080)")
    .option("--host <host>", "address to bind", "127.0.0.1")
    .option("--register <admin-url>", "register this endpoint with that Restate admin API")
    .option(
      "--identity-key <key>",
      "accept only requests signed by this Restate identity key (repeatable; env RESTATE_IDENTITY_KEYS, comma-separated)",
      collect,
      [],
    )
    .option(
      "--allow-unsigned",
      "serve a non-loopback --host without --identity-key: anyone who reaches the port can then run jobs with this endpoint's key and tools",
    )
    .option(
      "--allow-base-url <url>",
      "base URL that may receive this endpoint's key (repeatable; default: its own --base-url / OPENAI_BASE_URL / config baseUrl, else OpenAI's)",
      collect,
      [],
    )
    .option("--allow-root <dir>", "directory jobs' file tools may read (repeatable)", collect, [])
    .option("--allow-host <host>", "host jobs' http_get may fetch (repeatable)", collect, [])
    .option(
      "--grants <file>",
      "take what jobs may use from this grants file (re-read when it changes) and the --allow-* flags, not from the config",
    )
    .action(async (flags: ServeFlags, command: Command) => {
      const ctx = commandContext(app, command.optsWithGlobals());
      const port = flags.port ? parsePositiveInt(flags.port, "--port") : 9080;
      const identityKeys = [
        ...flags.identityKey,
        ...(app.env.RESTATE_IDENTITY_KEYS ?? "")
          .split(",")
          .map((k) => k.trim())
          .filter(Boolean),
      ];
      await checkIdentityKeys(identityKeys);
      if (!isLoopback(flags.host) && identityKeys.length === 0 && !flags.allowUnsigned) {
        throw new UsageError(
          `--host ${flags.host} can be reached from other machines: pass --identity-key (the Restate server's public key) so only that server can call this endpoint, or --allow-unsigned to accept that anyone who reaches the port can run jobs with its key and tools`,
        );
      }
      const granted = serveGrants(flags, ctx.config, app.cwd);
      let grants: GrantSource = fixedGrants(granted);
      if (flags.grants !== undefined) {
        const file = fileGrantSource(flags.grants, (problem) =>
          app.stderr.write(`pagent serve: ${problem}\n`),
        );
        // Merged again only when the file's grants changed: this runs on every check.
        let last: { from: Grants; merged: Grants } | undefined;
        grants = () => {
          const from = file();
          if (last?.from !== from) last = { from, merged: mergeGrants(from, granted) };
          return last.merged;
        };
      }
      const endpoint = await hostEndpoint({
        port,
        host: flags.host,
        apiKey: ctx.config.apiKey,
        env: app.env,
        identityKeys,
        grants,
      });
      app.onExit(() => endpoint.close());
      ctx.reporter.note(`pagent endpoint listening on ${endpoint.uri} (pid ${process.pid})`);
      if (!isLoopback(flags.host) && identityKeys.length === 0) {
        app.stderr.write(
          "pagent serve: --allow-unsigned: anyone who reaches this port can run jobs with this endpoint's key and tools\n",
        );
      }
      let advertised: string | null = null;
      if (flags.register) {
        const admin = new AdminClient(flags.register);
        advertised =
          flags.host === "0.0.0.0" || flags.host === "::"
            ? endpoint.uri.replace(/\/\/[^:]+:/, "//127.0.0.1:")
            : endpoint.uri;
        await admin.register(advertised);
        await resumeStuckInvocations(admin);
        ctx.reporter.note(`registered ${advertised} with ${flags.register}`);
      }
      ctx.reporter.show(
        serveView({
          url: advertised ?? endpoint.uri,
          pid: process.pid,
          registeredWith: flags.register ?? null,
        }),
      );
      // Serve until SIGINT/SIGTERM; main.ts then closes the endpoint. A signal that came while
      // starting has already fired its abort event: waiting for it then would never end.
      await new Promise<void>((resolve) => {
        if (app.signal.aborted) resolve();
        else app.signal.addEventListener("abort", () => resolve(), { once: true });
      });
      app.finish(EXIT.ok);
    });
}

/** A bad key is a usage error (exit 2): the SDK's own parser decides, on a throwaway endpoint. */
async function checkIdentityKeys(keys: string[]): Promise<void> {
  const restate = await import("@restatedev/restate-sdk");
  for (const key of keys) {
    if (!key.startsWith("publickeyv1_"))
      throw new UsageError(`identity key "${key}" must start with publickeyv1_`);
    try {
      restate
        .endpoint()
        .setLogger(() => undefined)
        .withIdentityV1(key)
        .handler();
    } catch (error) {
      throw new UsageError(
        `identity key "${key}" is not a valid Restate public key (${(error as Error).message}); give the public key matching the Restate server's request-identity private key`,
      );
    }
  }
}
