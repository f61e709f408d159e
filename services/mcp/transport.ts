/**
 * A stdio transport whose server runs in its own process group, so stopping it stops everything it
 * started (an `npx` wrapper, a shell, a language server...). The SDK's StdioClientTransport kills
 * only its direct child, and passes no `detached` option.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { ReadBuffer, serializeMessage } from "@modelcontextprotocol/sdk/shared/stdio.js";
import type { Transport } from "@modelcontextprotocol/sdk/shared/transport.js";
import type { JSONRPCMessage } from "@modelcontextprotocol/sdk/types.js";

const STDERR_TAIL = 4096;

export interface StdioLaunch {
  command: string;
  args: string[];
  env: Record<string, string>;
  cwd?: string;
}

/** Every live server group of this process, killed together when it exits. */
const groups = new Set<number>();
let exitHook = false;

function killGroup(pid: number): void {
  try {
    // A negative pid is the whole group (POSIX); Windows has no groups, the child alone goes.
    process.kill(process.platform === "win32" ? pid : -pid, "SIGKILL");
  } catch {
    // Already gone.
  }
}

/** Stops every server this process started; also runs on its exit. */
export function killAllServers(): void {
  for (const pid of groups) killGroup(pid);
  groups.clear();
}

export class GroupStdioTransport implements Transport {
  onclose?: () => void;
  onerror?: (error: Error) => void;
  onmessage?: (message: JSONRPCMessage) => void;
  private child?: ChildProcess;
  private readonly buffer = new ReadBuffer();
  /** The end of the server's stderr, for the message when it fails to start or dies. */
  stderrTail = "";

  constructor(private readonly launch: StdioLaunch) {}

  start(): Promise<void> {
    if (!exitHook) {
      exitHook = true;
      process.once("exit", killAllServers);
    }
    return new Promise((resolve, reject) => {
      const child = spawn(this.launch.command, this.launch.args, {
        env: this.launch.env,
        cwd: this.launch.cwd,
        stdio: ["pipe", "pipe", "pipe"],
        detached: process.platform !== "win32",
        windowsHide: true,
      });
      this.child = child;
      child.once("error", (error) => {
        reject(error);
        this.onerror?.(error);
      });
      child.once("spawn", () => {
        groups.add(child.pid!);
        resolve();
      });
      child.once("close", () => {
        if (child.pid) groups.delete(child.pid);
        this.child = undefined;
        this.onclose?.();
      });
      child.stdin.on("error", (error) => this.onerror?.(error));
      child.stderr.on("data", (chunk: Buffer) => {
        this.stderrTail = (this.stderrTail + chunk.toString("utf8")).slice(-STDERR_TAIL);
      });
      child.stdout.on("data", (chunk: Buffer) => {
        this.buffer.append(chunk);
        for (;;) {
          let message: JSONRPCMessage | null;
          try {
            message = this.buffer.readMessage();
          } catch (error) {
            this.onerror?.(error as Error);
            continue;
          }
          if (message === null) break;
          this.onmessage?.(message);
        }
      });
    });
  }

  send(message: JSONRPCMessage): Promise<void> {
    const stdin = this.child?.stdin;
    if (!stdin || stdin.destroyed) return Promise.reject(new Error("the server is not running"));
    return new Promise((resolve) => {
      if (stdin.write(serializeMessage(message))) resolve();
      else stdin.once("drain", resolve);
    });
  }

  close(): Promise<void> {
    const child = this.child;
    if (child?.pid) {
      groups.delete(child.pid);
      killGroup(child.pid);
    }
    this.buffer.clear();
    return Promise.resolve();
  }
}
