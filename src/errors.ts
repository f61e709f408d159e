/** One table of exit codes (SPEC.md "Exit codes"); `--help` prints it and main.ts maps errors onto it. */
export const EXIT = {
  ok: 0,
  jobFailed: 1,
  usage: 2,
  partial: 3,
  unavailable: 69,
  interrupted: 130,
} as const;

export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

/** The same table as README.md's "Exit codes". */
export const EXIT_CODE_HELP = `Exit codes:
  0    every task succeeded
  1    the job failed (no usable result), was cancelled, or its --timeout passed before any task finished
  2    usage error or bad input (unknown flag, missing file, empty or binary input, no model configured, unknown job id)
  3    partial: some tasks failed, the others' results are printed (also: refused inputs, --max-tokens-total reached)
  69   Restate is unavailable, or the model provider is: every task failed unreachable (connection, DNS, TLS) or on 5xx
  130  interrupted (Ctrl-C or SIGTERM) while watching; the job goes on (pagent attach JOB)`;

/** An error the user can act on: its message is printed as one line, with its exit code. */
export class PagentError extends Error {
  constructor(
    message: string,
    readonly exitCode: ExitCode,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = "PagentError";
  }
}

/** Wrong flags or bad input: exit 2. */
export class UsageError extends PagentError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, EXIT.usage, options);
    this.name = "UsageError";
  }
}

/** Restate or the provider cannot be reached: exit 69. */
export class UnavailableError extends PagentError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, EXIT.unavailable, options);
    this.name = "UnavailableError";
  }
}

/** The user stopped watching with Ctrl-C; the job goes on. */
export class InterruptedError extends PagentError {
  constructor(message: string) {
    super(message, EXIT.interrupted);
    this.name = "InterruptedError";
  }
}

/** What main.ts prints and returns for any thrown value. */
export function describeError(error: unknown): { message: string; exitCode: ExitCode } {
  if (error instanceof PagentError) return { message: error.message, exitCode: error.exitCode };
  // fetch() reports a refused connection as TypeError("fetch failed") with the code on its cause.
  const err = error as { code?: string; cause?: { code?: string } } | undefined;
  const code = err?.code ?? err?.cause?.code;
  if (code === "ECONNREFUSED" || code === "ECONNRESET" || code === "UND_ERR_CONNECT_TIMEOUT") {
    return {
      message: `cannot reach Restate (${code}); check --restate-url/--admin-url or run \`pagent server start\``,
      exitCode: EXIT.unavailable,
    };
  }
  const message = error instanceof Error ? error.message : String(error);
  return {
    message: `unexpected error: ${message} (run with --verbose for details)`,
    exitCode: EXIT.jobFailed,
  };
}
