import type { Env } from "../config.js";

/** What the terminal can show, decided once in main.ts and passed down. */
export interface Terminal {
  /** Colour in progress and notes on stderr. */
  color: boolean;
  /** Colour in results on stdout: off when stdout is redirected, even if stderr is a terminal. */
  stdoutColor: boolean;
  /** Live, redrawn progress lines (spinners) on stderr. */
  live: boolean;
}

export function detectTerminal(opts: {
  env: Env;
  stdoutIsTTY: boolean;
  stderrIsTTY: boolean;
  machineOutput: boolean;
  noColorFlag?: boolean;
}): Terminal {
  const { env } = opts;
  const forced = env.FORCE_COLOR !== undefined && env.FORCE_COLOR !== "0";
  const noColor = opts.noColorFlag === true || (env.NO_COLOR !== undefined && env.NO_COLOR !== "");
  const ci = env.CI !== undefined && env.CI !== "" && env.CI !== "false";
  const dumb = env.TERM === "dumb";
  const allowed = !opts.machineOutput && !noColor;
  return {
    color: allowed && (forced || (opts.stderrIsTTY && !dumb)),
    stdoutColor: allowed && (forced || (opts.stdoutIsTTY && !dumb)),
    live: !opts.machineOutput && opts.stderrIsTTY && !ci && !dumb,
  };
}
