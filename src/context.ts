import type { Readable } from "node:stream";
import type { Asked } from "../services/capabilities.js";
import {
  loadConfigFile,
  resolveConfig,
  type Env,
  type GlobalFlags,
  type ResolvedConfig,
} from "./config.js";
import type { ExitCode } from "./errors.js";
import { recordGrants } from "./grants.js";
import { createReporter } from "./output/reporter.js";
import type { Reporter } from "./output/types.js";
import { detectTerminal, type Terminal } from "./output/terminal.js";
import { readClusterState } from "./restate/cluster.js";
import { openRuntime, type Runtime } from "./restate/runtime.js";

/** The process, as main.ts sees it; commands never reach for globals. */
export interface App {
  env: Env;
  cwd: string;
  stdin: Readable & { isTTY?: boolean };
  stdout: NodeJS.WritableStream & { isTTY?: boolean };
  stderr: NodeJS.WritableStream & { isTTY?: boolean };
  signal: AbortSignal;
  version: string;
  /** Version plus build, recorded by the embedded endpoint. */
  buildId: string;
  /** The command's exit code; main.ts is the one place that sets the process's. */
  finish(code: ExitCode): void;
  /** Cleanups main.ts runs at exit, also on Ctrl-C and on errors. */
  onExit(cleanup: () => Promise<void>): void;
}

export interface CommandContext {
  app: App;
  config: ResolvedConfig;
  terminal: Terminal;
  reporter: Reporter;
  /** `asked`: what the command's job uses (base URL, command tools, roots, hosts), granted first. */
  openRuntime(asked?: Asked): Promise<Runtime>;
}

export function commandContext(app: App, flags: GlobalFlags): CommandContext {
  const config = resolveConfig(flags, app.env, loadConfigFile(flags.config, app.cwd));
  const terminal = detectTerminal({
    env: app.env,
    stdoutIsTTY: app.stdout.isTTY === true,
    stderrIsTTY: app.stderr.isTTY === true,
    machineOutput: config.output !== "human",
    noColorFlag: flags.color === false,
  });
  const reporter = createReporter({
    mode: config.output,
    quiet: config.quiet,
    terminal,
    streams: { stdout: app.stdout, stderr: app.stderr },
  });
  return {
    app,
    config,
    terminal,
    reporter,
    openRuntime: async (asked?: Asked) => {
      // The user's own command grants what it uses to the endpoints that read the user's grants
      // file: the embedded one and the local cluster's. A remote `pagent serve` grants its own.
      if (
        asked &&
        (config.mode === "embedded" || (config.mode === "connect" && readClusterState(config.home)))
      ) {
        await recordGrants(config.home, asked);
      }
      const runtime = await openRuntime({
        mode: config.mode,
        home: config.home,
        ingressUrls: config.ingressUrls,
        adminUrls: config.adminUrls,
        apiKey: config.apiKey,
        secretEnv: config.secretEnv,
        version: app.buildId,
        ...(asked ? { grants: asked } : {}),
        notice: (line) => {
          if (!config.quiet) app.stderr.write(`pagent: ${line}\n`);
        },
      });
      app.onExit(() => runtime.close());
      return runtime;
    },
  };
}
