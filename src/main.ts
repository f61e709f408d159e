import { readFileSync, statSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { CommanderError } from "commander";
import { buildProgram } from "./cli.js";
import type { App } from "./context.js";
import { describeError, EXIT, type ExitCode } from "./errors.js";

const PACKAGE_JSON = path.resolve(
  path.dirname(fileURLToPath(import.meta.url)),
  "../../package.json",
);

function packageVersion(): string {
  return (JSON.parse(readFileSync(PACKAGE_JSON, "utf8")) as { version: string }).version;
}

/** Changes with every build, so a running endpoint with older service code is noticed and replaced. */
function buildId(version: string): string {
  const compiledServices = path.resolve(
    path.dirname(fileURLToPath(import.meta.url)),
    "../services/job/service.js",
  );
  return `${version}+${Math.round(statSync(compiledServices).mtimeMs).toString(36)}`;
}

/** How long cleanups (stopping an --ephemeral server) may take after Ctrl-C or SIGTERM. */
const SIGNAL_GRACE_MS = 10_000;

/** The process boundary: parses, runs one command, maps every error to one line and an exit code. */
export async function main(argv: string[]): Promise<ExitCode> {
  // Everything pagent writes (state, logs, the identity key) and everything it starts (restate-server
  // with its journal, the endpoint) is the user's alone: children inherit the umask.
  process.umask(0o077);
  const controller = new AbortController();
  const cleanups: (() => Promise<void>)[] = [];
  let code: ExitCode = EXIT.ok;
  let interrupts = 0;
  const onSignal = (signal: NodeJS.Signals) => {
    interrupts++;
    if (interrupts > 1) process.exit(EXIT.interrupted);
    controller.abort(new Error(signal));
    // Whatever the command waits on, Ctrl-C or SIGTERM ends it promptly: the command sees the abort
    // and its cleanups run, but a step that ignores the signal cannot keep the process alive.
    setTimeout(() => process.exit(EXIT.interrupted), SIGNAL_GRACE_MS).unref();
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  const verbose = argv.includes("--verbose");
  const app: App = {
    env: process.env,
    cwd: process.cwd(),
    stdin: process.stdin,
    stdout: process.stdout,
    stderr: process.stderr,
    signal: controller.signal,
    version: packageVersion(),
    buildId: buildId(packageVersion()),
    finish: (exitCode) => {
      code = exitCode;
    },
    onExit: (cleanup) => cleanups.push(cleanup),
  };
  try {
    await buildProgram(app).parseAsync(argv);
  } catch (error) {
    if (error instanceof CommanderError) {
      // --help and --version end through here too, successfully.
      if (
        error.exitCode === 0 ||
        error.code === "commander.helpDisplayed" ||
        // `pagent` alone printed its usage.
        error.code === "commander.help" ||
        error.code === "commander.version"
      ) {
        code = EXIT.ok;
      } else {
        process.stderr.write(
          `pagent: ${error.message.replace(/^error: /, "")} (see pagent --help)\n`,
        );
        code = EXIT.usage;
      }
    } else {
      const described = describeError(error);
      process.stderr.write(`pagent: ${described.message}\n`);
      if (verbose && error instanceof Error && error.stack)
        process.stderr.write(`${error.stack}\n`);
      code = described.exitCode;
    }
  } finally {
    while (cleanups.length > 0) {
      await cleanups.pop()!().catch((error: unknown) => {
        if (verbose) process.stderr.write(`pagent: cleanup failed: ${String(error)}\n`);
      });
    }
  }
  return code;
}

const code = await main(process.argv);
// Idle keep-alive sockets would hold the process open for seconds; exit once output is flushed.
process.stdout.write("", () => process.stderr.write("", () => process.exit(code)));
