import { Command, Option } from "commander";
import { registerAnalyze } from "./commands/analyze.js";
import { registerAsk } from "./commands/ask.js";
import { registerCluster } from "./commands/cluster.js";
import { registerJobCommands } from "./commands/jobs.js";
import { registerServe } from "./commands/serve.js";
import { registerServer } from "./commands/server.js";
import { registerUi } from "./commands/ui.js";
import type { App } from "./context.js";
import { EXIT_CODE_HELP } from "./errors.js";

/** The commander program: global flags and one registration per command. */
export function buildProgram(app: App): Command {
  const output = {
    writeOut: (text: string) => app.stdout.write(text),
    // Commander's own errors are re-thrown and printed once by main.ts.
    outputError: () => undefined,
    // What is left for stderr is the usage that `pagent` (or `pagent server`) with no command
    // prints: asked-for output, so stdout and exit 0 (main.ts), as `docker` does.
    writeErr: (text: string) => app.stdout.write(text),
  };
  const program = new Command("pagent")
    .description("Run parallel LLM agent jobs durably on Restate.")
    .version(app.version, "-V, --version")
    .option(
      "--ephemeral",
      "use a private Restate server for this command only (env PAGENT_EPHEMERAL=1)",
    )
    .option(
      "--restate-url <urls>",
      "use an existing Restate ingress (comma-separated for a cluster; env RESTATE_INGRESS_URL)",
    )
    .option("--admin-url <urls>", "its admin API (env RESTATE_ADMIN_URL)")
    .option("--model <name>", "model name, or 'local' for the offline model (env PAGENT_MODEL)")
    .option("--base-url <url>", "OpenAI-compatible API base URL (env OPENAI_BASE_URL)")
    .option(
      "--provider <name>",
      'provider profile of the config\'s "providers" (also --model NAME:MODEL)',
    )
    .option(
      "--header <line>",
      '"Name: value" sent with every LLM request (repeatable); ${VAR} is read from the endpoint\'s environment',
      (line: string, all: string[] = []) => [...all, line],
    )
    .option("--retries <n>", "attempts per LLM or tool step before it fails (default 5)")
    .option(
      "--task-timeout <duration>",
      "time limit of one LLM or tool call, e.g. 90s (default 120s)",
    )
    .option(
      "--timeout <duration>",
      "time limit of the whole job (a batch: of all its inputs), e.g. 10m (default none)",
    )
    .option(
      "--rpm <n>",
      "at most N LLM requests a minute to this provider, shared by every job of the endpoint (env PAGENT_RPM)",
    )
    .option(
      "--tpm <n>",
      "at most N tokens a minute to this provider, shared like --rpm (env PAGENT_TPM)",
    )
    .option(
      "--max-tokens-total <n>",
      "token budget: start no new input, turn or retry once the job has used N tokens (exit 3)",
    )
    .option(
      "--retention <duration>",
      "how long finished jobs stay attachable, e.g. 7d (default 7d; env PAGENT_RETENTION)",
    )
    .option("--config <file>", "config file (default ./pagent.config.json if present)")
    .addOption(
      new Option("--json", "print one JSON document (a job's: its result when done)").conflicts(
        "ndjson",
      ),
    )
    .addOption(
      new Option(
        "--ndjson",
        "print one JSON object per line (a job's events as they happen; a job per line for jobs)",
      ),
    )
    .option("-q, --quiet", "print the essential value only (the result; ids for jobs)")
    .option("--verbose", "print stack traces of errors")
    .option("--no-color", "no colour (also NO_COLOR)")
    .showHelpAfterError(false)
    // Every command's --help lists the options that work everywhere (--model, --json, ...).
    .configureHelp({ showGlobalOptions: true })
    .addHelpText("after", `\n${EXIT_CODE_HELP}\n`)
    .exitOverride()
    .configureOutput(output);
  program.enablePositionalOptions(false);
  registerAnalyze(program, app);
  registerAsk(program, app);
  registerJobCommands(program, app);
  registerServer(program, app);
  registerUi(program, app);
  registerServe(program, app);
  registerCluster(program, app);
  for (const command of program.commands) {
    command.exitOverride().configureOutput(output);
    for (const sub of command.commands) sub.exitOverride().configureOutput(output);
  }
  return program;
}
