import type { Env } from "../config.js";

/** What the terminal can show, decided once in main.ts and passed down. */
export interface Terminal {
  /** Colour on stderr/stdout. */
  color: boolean;
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
  return {
    color: !opts.machineOutput && !noColor && (forced || (opts.stderrIsTTY && !dumb)),
    live: !opts.machineOutput && opts.stderrIsTTY && !ci && !dumb,
  };
}
