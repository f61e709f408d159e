import type { ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { AdminClient } from "../../src/restate/admin.js";
import {
  freePort,
  freePorts,
  spawnServer,
  tcpTargets,
  urlsOf,
  waitForServer,
  type ServerPorts,
} from "../../src/restate/server.js";
import { spawnCli, waitForLine, type CliProcess } from "./cli.js";

/** A real restate-server on free loopback ports with a throwaway data dir. */
export interface TestRestate extends AsyncDisposable {
  ingressUrl: string;
  adminUrl: string;
  dataDir: string;
  ports: ServerPorts;
  admin: AdminClient;
  readonly pid: number;
  /** SIGKILL the server (data stays). */
  kill(): Promise<void>;
  /** Start it again on the same ports and data dir. */
  restart(): Promise<void>;
  stop(): Promise<void>;
}

/** `identityKeyFile`: the server signs its calls to endpoints with this private key (src/restate/identity.ts). */
export async function startRestate(
  options: { identityKeyFile?: string } = {},
): Promise<TestRestate> {
  const dir = mkdtempSync(path.join(tmpdir(), "pagent-test-restate-"));
  const ports = await freePorts();
  const dataDir = path.join(dir, "data");
  let child: ChildProcess;
  const boot = async () => {
    child = spawnServer({
      dataDir,
      ports,
      logFile: path.join(dir, "restate.log"),
      detached: false,
      // Its scratch `invoker-*` dirs go with the test's dir instead of piling up in /tmp.
      tmpDir: dir,
      identityKeyFile: options.identityKeyFile,
    });
    await waitForServer(tcpTargets(ports), 30_000, child);
  };
  const killChild = async (signal: NodeJS.Signals) => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((resolve) => child.once("exit", resolve));
    child.kill(signal);
    await exited;
  };
  await boot();
  const { ingressUrl, adminUrl } = urlsOf(ports);
  const stop = async () => {
    await killChild("SIGTERM");
    rmSync(dir, { recursive: true, force: true });
  };
  return {
    ingressUrl,
    adminUrl,
    dataDir,
    ports,
    admin: new AdminClient(adminUrl),
    get pid() {
      return child.pid!;
    },
    kill: () => killChild("SIGKILL"),
    restart: boot,
    stop,
    [Symbol.asyncDispose]: stop,
  };
}

/** `pagent serve` as a real child process, registered with the test server. */
export interface TestEndpoint extends AsyncDisposable {
  port: number;
  process: CliProcess;
  kill(): Promise<void>;
  restart(): Promise<void>;
}

/**
 * `grants`: the `pagent serve` flags that grant what the test's jobs use (`--allow-base-url` of the
 * fake LLM server, `--allow-host`, `--allow-root`); `cwd`: where it runs, and so reads its config.
 */
export async function startServeProcess(
  restate: TestRestate,
  env: Record<string, string | undefined> = {},
  grants: string[] = [],
  cwd?: string,
): Promise<TestEndpoint> {
  const port = await freePort();
  let proc: CliProcess;
  const boot = async () => {
    proc = spawnCli(["serve", "--port", String(port), "--register", restate.adminUrl, ...grants], {
      env,
      ...(cwd ? { cwd } : {}),
    });
    await waitForLine(proc, /registered/, 20_000);
  };
  await boot();
  const kill = async () => {
    if (proc.child.exitCode !== null || proc.child.signalCode !== null) return;
    const exited = new Promise((resolve) => proc.child.once("exit", resolve));
    proc.child.kill("SIGKILL");
    await exited;
  };
  return {
    port,
    get process() {
      return proc;
    },
    kill,
    restart: boot,
    [Symbol.asyncDispose]: async () => {
      if (proc.child.exitCode === null && proc.child.signalCode === null) {
        const exited = new Promise((resolve) => proc.child.once("exit", resolve));
        proc.child.kill("SIGTERM");
        await exited;
      }
    },
  };
}
