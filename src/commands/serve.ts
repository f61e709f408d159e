import type { Command } from "commander";
import { parsePositiveInt } from "../config.js";
import { commandContext, type App } from "../context.js";
import { EXIT, UsageError } from "../errors.js";
import { AdminClient } from "../restate/admin.js";
import { hostEndpoint } from "../restate/endpoint.js";
import { serveView } from "../output/views.js";
import { resumeStuckInvocations } from "../restate/endpoint-process.js";
import { checkIdentityKeys, isLoopback, resolveServe, type ServeFlags } from "../serve-config.js";

// The resolution lives in src/serve-config.ts (shared with the serverless handlers); named here too
// for the code and tests that know it from this command.
export { isLoopback, serveGrants, type ServeFlags } from "../serve-config.js";

// No commander default for the repeatable flags: help would print "(default: [])" for each.
const collect = (value: string, all: string[] | undefined) => [...(all ?? []), value];
const NO_VALUES = { identityKey: [], allowBaseUrl: [], allowRoot: [], allowHost: [] };

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
    )
    .option(
      "--allow-unsigned",
      "serve a non-loopback --host without --identity-key: anyone who reaches the port can then run jobs with this endpoint's key and tools",
    )
    .option(
      "--allow-base-url <url>",
      "base URL that may receive this endpoint's key (repeatable; default: its own --base-url / OPENAI_BASE_URL / config baseUrl, else OpenAI's)",
      collect,
    )
    .option("--allow-root <dir>", "directory jobs' file tools may read (repeatable)", collect)
    .option("--allow-host <host>", "host jobs' http_get may fetch (repeatable)", collect)
    .option(
      "--grants <file>",
      "take what jobs may use from this grants file (re-read when it changes) and the --allow-* flags, not from the config",
    )
    .option(
      "--services <which>",
      "which services this endpoint hosts: job (the orchestrator: no key, no tools), tasks (the executors: key, tools, grants) or all",
      "all",
    )
    .option(
      "--protocol <mode>",
      "bidirectional (HTTP/2, one stream per invocation) or request-response (HTTP/1.1, as serverless platforms and most proxies speak it)",
      "bidirectional",
    )
    .option(
      "--advertise <url>",
      "with --register: register this address instead of the endpoint's own (a load balancer in front of several endpoints)",
    )
    .action(async (given: Partial<ServeFlags>, command: Command) => {
      const flags: ServeFlags = { ...NO_VALUES, host: "127.0.0.1", ...given };
      const ctx = commandContext(app, command.optsWithGlobals());
      const port = flags.port ? parsePositiveInt(flags.port, "--port") : 9080;
      const settings = resolveServe(flags, ctx.config, app.env, app.cwd, (problem) =>
        app.stderr.write(`pagent serve: ${problem}\n`),
      );
      const { identityKeys } = settings;
      const restate = await import("@restatedev/restate-sdk");
      checkIdentityKeys(identityKeys, (key) =>
        restate
          .endpoint()
          .setLogger(() => undefined)
          .withIdentityV1(key)
          .handler(),
      );
      if (!isLoopback(flags.host) && identityKeys.length === 0 && !flags.allowUnsigned) {
        throw new UsageError(
          `--host ${flags.host} can be reached from other machines: pass --identity-key (the Restate server's public key) so only that server can call this endpoint, or --allow-unsigned to accept that anyone who reaches the port can run jobs with its key and tools`,
        );
      }
      if (flags.advertise !== undefined && !flags.register) {
        throw new UsageError("--advertise names the address to register: use it with --register");
      }
      if (flags.advertise !== undefined && !/^https?:\/\//.test(flags.advertise)) {
        throw new UsageError(`--advertise "${flags.advertise}" is not an http(s) URL`);
      }
      const endpoint = await hostEndpoint({
        port,
        host: flags.host,
        apiKey: settings.credentials.apiKey,
        env: settings.credentials.env ?? {},
        identityKeys,
        grants: settings.grants,
        services: settings.services,
        protocol: settings.protocol,
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
          flags.advertise ??
          (flags.host === "0.0.0.0" || flags.host === "::"
            ? endpoint.uri.replace(/\/\/[^:]+:/, "//127.0.0.1:")
            : endpoint.uri);
        await admin.register(advertised, {}, { http1: settings.protocol === "request-response" });
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
