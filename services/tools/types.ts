import type { z } from "zod";

/** Why a tool call did not produce a result; only `transient` is worth retrying. */
export type ToolErrorKind = "invalid_args" | "refused" | "failed" | "timeout" | "transient";

/** A tool failure whose message is meant to be shown to the LLM as the tool result. */
export class ToolError extends Error {
  override readonly name = "ToolError";
  readonly kind: ToolErrorKind;
  readonly retryable: boolean;

  constructor(kind: ToolErrorKind, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.kind = kind;
    this.retryable = kind === "transient";
  }
}

/** What a tool may touch, decided by the CLI flags of the job. */
export interface ToolContext {
  /** Absolute directories file tools may read; realpath'd again by the tools, so symlinked roots work. */
  allowRoots: string[];
  /**
   * The endpoint's granted roots, when it has any: a root of the job that leads outside all of them
   * when the tool runs (a directory swapped for a symlink after the job was checked) counts for nothing.
   */
  grantedRoots?: string[];
  /** `host` or `host:port` entries http_get may contact. */
  allowHosts: string[];
  signal: AbortSignal;
  /** Base for relative paths. */
  cwd: string;
  /** Clock override for deterministic tests. */
  now?: () => Date;
}

/** A tool the agent can call: a validated argument schema plus an async body returning text. */
export interface ToolDefinition<A = unknown> {
  name: string;
  description: string;
  /** True when calling the tool cannot change anything outside the process. */
  readOnly: boolean;
  /**
   * True for pure in-process computation (no I/O, nothing to wait for): such a tool cannot fail
   * transiently, so it never needs a retry of its own and can run as a step of the agent itself.
   */
  pure?: boolean;
  argsSchema: z.ZodType<A>;
  /** JSON Schema of the arguments, as sent to the LLM. */
  jsonSchema: Record<string, unknown>;
  /** Validates raw LLM arguments (an object or its JSON text); throws ToolError "invalid_args". */
  parse(raw: unknown): A;
  /** Runs the tool; throws ToolError on failure. */
  run(args: A, ctx: ToolContext): Promise<string>;
}
