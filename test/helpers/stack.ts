import { mkdtempSync, realpathSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, beforeEach } from "vitest";
import { runCli, type CliOptions, type CliResult } from "./cli.js";
import {
  startFakeOpenAI,
  type FakeOpenAI,
  type FakeOpenAIOptions,
  type FakeResponder,
} from "./fake-openai.js";
import { startRestate, startServeProcess, type TestEndpoint, type TestRestate } from "./restate.js";

/** What exists before `pagent serve` starts, so its grants and config can name it. */
export interface StackParts {
  restate: TestRestate;
  fake: FakeOpenAI;
  /** A fresh temp dir (its real path), removed at dispose. */
  dir: string;
}

export interface StackOptions {
  /** Names the temp dir `pagent-<name>-e2e-*`. */
  name: string;
  /** The endpoint's environment: where its provider keys come from (none by default). */
  serveEnv?: Record<string, string>;
  fake?: FakeOpenAIOptions;
  /** The endpoint's grant flags; by default the fake's base URL only. */
  grants?: (parts: StackParts) => string[];
  /** Runs just before the endpoint starts, e.g. to write the config file it reads. */
  beforeServe?: (parts: StackParts) => void | Promise<void>;
  /** Run the endpoint and every `cli` call in `dir`, so both read the same config file. */
  inDir?: boolean;
  /** Environment of every `cli` call (a call's own `env` is merged over it). */
  cliEnv?: Record<string, string | undefined>;
}

/** A real restate-server, the fake OpenAI server and `pagent serve` registered with the one. */
export interface ConnectedStack extends StackParts, AsyncDisposable {
  endpoint: TestEndpoint;
  /** `--restate-url … --admin-url …`: connect mode against this stack's server. */
  connectFlags: string[];
  /** `pagent ARGS --restate-url … --admin-url …`, with a 120 s timeout. */
  cli(args: string[], options?: CliOptions): Promise<CliResult>;
}

/**
 * The connect-mode setup of an e2e file, started once per file (`beforeAll`) and stopped at dispose
 * (`afterAll`). Order: temp dir, restate-server, fake, `beforeServe`, then the endpoint, so the fake
 * listens before its base URL is granted. If a step fails, what had started is stopped.
 */
export async function startConnectedStack(options: StackOptions): Promise<ConnectedStack> {
  // Stopped in reverse order of start: endpoint, restate-server, fake, temp dir.
  const stops: (() => unknown)[] = [];
  const dispose = async () => {
    for (const stop of stops.splice(0).reverse()) await stop();
  };
  try {
    const dir = realpathSync(mkdtempSync(path.join(tmpdir(), `pagent-${options.name}-e2e-`)));
    stops.push(() => rmSync(dir, { recursive: true, force: true }));
    const restate = await startRestate();
    stops.push(() => restate.stop());
    const fake = await startFakeOpenAI(options.fake);
    stops.push(() => fake.close());
    const parts: StackParts = { restate, fake, dir };
    await options.beforeServe?.(parts);
    const grants = options.grants?.(parts) ?? ["--allow-base-url", fake.baseUrl];
    const cwd = options.inDir ? dir : undefined;
    const endpoint = await startServeProcess(restate, options.serveEnv, grants, cwd);
    stops.push(() => endpoint[Symbol.asyncDispose]());
    const connectFlags = ["--restate-url", restate.ingressUrl, "--admin-url", restate.adminUrl];
    return {
      ...parts,
      endpoint,
      connectFlags,
      cli: (args, { env, ...rest } = {}) =>
        runCli([...args, ...connectFlags], {
          timeoutMs: 120_000,
          ...(cwd ? { cwd } : {}),
          ...rest,
          env: { ...options.cliEnv, ...env },
        }),
      [Symbol.asyncDispose]: dispose,
    };
  } catch (err) {
    await dispose();
    throw err;
  }
}

export interface UseStackOptions extends StackOptions {
  /** Before each test: the fake's log is cleared and this becomes its responder again. */
  respond?: FakeResponder;
  /** Timeout of the start (the `beforeAll` hook); vitest's default when omitted. */
  startTimeoutMs?: number;
  /** Called once started: where a file binds the parts its tests name (`restate`, `fake`, `dir`). */
  started?: (stack: ConnectedStack) => void;
}

/**
 * One stack for the whole e2e file: started in a `beforeAll`, stopped in an `afterAll`. The handle
 * it returns is filled when that hook ran. Hooks run in the order they are registered, so a server
 * that `grants` or `beforeServe` names must be started by a `beforeAll` registered before this call.
 */
export function useConnectedStack(options: UseStackOptions): ConnectedStack {
  const stack = {} as ConnectedStack;
  beforeAll(async () => {
    Object.assign(stack, await startConnectedStack(options));
    options.started?.(stack);
  }, options.startTimeoutMs);
  afterAll(() => stack[Symbol.asyncDispose]?.());
  const { respond } = options;
  if (respond) {
    beforeEach(() => {
      stack.fake.reset();
      stack.fake.setResponder(respond);
    });
  }
  return stack;
}
