import type { Command } from "commander";
import { parsePositiveInt } from "../config.js";
import { commandContext, type App } from "../context.js";
import { EXIT, UsageError } from "../errors.js";
import { AdminClient } from "../restate/admin.js";
import { hostEndpoint } from "../restate/endpoint.js";
import { resumeStuckInvocations } from "../restate/runtime.js";

interface ServeFlags {
  port?: string;
  host: string;
  register?: string;
  identityKey: string[];
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
      (v: string, all: string[]) => [...all, v],
      [],
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
      const endpoint = await hostEndpoint({
        port,
        host: flags.host,
        apiKey: ctx.config.apiKey,
        identityKeys,
      });
      app.onExit(() => endpoint.close());
      app.stderr.write(`pagent endpoint listening on ${endpoint.uri} (pid ${process.pid})\n`);
      if (flags.register) {
        const admin = new AdminClient(flags.register);
        const advertised =
          flags.host === "0.0.0.0" || flags.host === "::"
            ? endpoint.uri.replace(/\/\/[^:]+:/, "//127.0.0.1:")
            : endpoint.uri;
        await admin.register(advertised);
        await resumeStuckInvocations(admin);
        app.stderr.write(`registered ${advertised} with ${flags.register}\n`);
      }
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
