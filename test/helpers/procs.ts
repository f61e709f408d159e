/**
 * Looking at real processes from a test through Linux's /proc: who is alive, what a process was
 * started with, which TCP sockets it listens on and how much memory it holds.
 */
import { lstatSync, readdirSync, readFileSync, readlinkSync } from "node:fs";
import path from "node:path";
import { isAlive } from "../../src/restate/server.js";

/** Alive and not a zombie: the same check pagent itself uses. */
export function pidAlive(pid: number | null | undefined): boolean {
  return isAlive(pid ?? undefined);
}

/** Polls until `pid` is gone; false if it is still alive after `timeoutMs`. */
export async function waitForExit(pid: number, timeoutMs = 15_000): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (!pidAlive(pid)) return true;
    await new Promise((r) => setTimeout(r, 50));
  }
  return !pidAlive(pid);
}

export interface ProcInfo {
  pid: number;
  /** argv joined by spaces. */
  cmdline: string;
  /** Environment as KEY=VALUE strings (empty if unreadable). */
  environ: string[];
}

function readNulSeparated(file: string): string[] {
  try {
    return readFileSync(file, "utf8").split("\0").filter(Boolean);
  } catch {
    return [];
  }
}

/** Every live process this user can see (zombies excluded). */
export function listProcesses(): ProcInfo[] {
  const out: ProcInfo[] = [];
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    const pid = Number(name);
    if (pid === process.pid || !pidAlive(pid)) continue;
    const argv = readNulSeparated(`/proc/${pid}/cmdline`);
    if (argv.length === 0) continue;
    out.push({ pid, cmdline: argv.join(" "), environ: readNulSeparated(`/proc/${pid}/environ`) });
  }
  return out;
}

/** Processes whose command line contains every one of `needles` (like `pgrep -f`). */
export function findProcesses(...needles: string[]): ProcInfo[] {
  return listProcesses().filter((p) => needles.every((n) => p.cmdline.includes(n)));
}

/** Processes started with `NAME=value` in their environment. */
export function processesWithEnv(name: string, value: string): ProcInfo[] {
  return listProcesses().filter((p) => p.environ.includes(`${name}=${value}`));
}

export interface ListenSocket {
  inode: number;
  /** Dotted IPv4, or the IPv6 address (v4-mapped ones as dotted IPv4). */
  address: string;
  port: number;
  family: "tcp" | "tcp6";
}

function ipv4FromHex(hex: string): string {
  // /proc/net/tcp prints the address as a little-endian 32-bit word: 0100007F is 127.0.0.1.
  const bytes = [6, 4, 2, 0].map((i) => parseInt(hex.slice(i, i + 2), 16));
  return bytes.join(".");
}

function ipv6FromHex(hex: string): string {
  // Four little-endian 32-bit words.
  const bytes: number[] = [];
  for (let w = 0; w < 4; w++) {
    const word = hex.slice(w * 8, w * 8 + 8);
    for (const i of [6, 4, 2, 0]) bytes.push(parseInt(word.slice(i, i + 2), 16));
  }
  const mapped = bytes.slice(0, 10).every((b) => b === 0) && bytes[10] === 255 && bytes[11] === 255;
  if (mapped) return bytes.slice(12).join(".");
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(((bytes[i]! << 8) | bytes[i + 1]!).toString(16));
  return groups.join(":");
}

/** Every TCP socket in LISTEN state (st 0A) in this network namespace, by inode. */
export function listeningTcpSockets(): Map<number, ListenSocket> {
  const sockets = new Map<number, ListenSocket>();
  for (const family of ["tcp", "tcp6"] as const) {
    let text: string;
    try {
      text = readFileSync(`/proc/net/${family}`, "utf8");
    } catch {
      continue;
    }
    for (const line of text.split("\n").slice(1)) {
      const fields = line.trim().split(/\s+/);
      if (fields.length < 10 || fields[3] !== "0A") continue;
      const [addrHex, portHex] = fields[1]!.split(":") as [string, string];
      const inode = Number(fields[9]);
      sockets.set(inode, {
        inode,
        address: family === "tcp" ? ipv4FromHex(addrHex) : ipv6FromHex(addrHex),
        port: parseInt(portHex, 16),
        family,
      });
    }
  }
  return sockets;
}

/** Socket inodes a process holds open (`/proc/PID/fd/N -> socket:[inode]`). */
export function socketInodes(pid: number): number[] {
  const inodes: number[] = [];
  let fds: string[];
  try {
    fds = readdirSync(`/proc/${pid}/fd`);
  } catch {
    return inodes;
  }
  for (const fd of fds) {
    try {
      const match = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
      if (match) inodes.push(Number(match[1]));
    } catch {
      // closed meanwhile
    }
  }
  return inodes;
}

/** The TCP sockets `pid` listens on. */
export function listeningSocketsOf(pid: number): ListenSocket[] {
  const listening = listeningTcpSockets();
  return socketInodes(pid).flatMap((inode) => {
    const socket = listening.get(inode);
    return socket ? [socket] : [];
  });
}

/** The paths of the unix sockets `pid` listens on (/proc/net/unix, flag __SO_ACCEPTCON). */
export function listeningUnixSocketsOf(pid: number): string[] {
  const inodes = new Set(socketInodes(pid));
  const paths: string[] = [];
  for (const line of readFileSync("/proc/net/unix", "utf8").split("\n").slice(1)) {
    const fields = line.trim().split(/\s+/);
    if (fields.length < 8 || (parseInt(fields[3]!, 16) & 0x10000) === 0) continue;
    if (inodes.has(Number(fields[6]))) paths.push(fields[7]!);
  }
  return paths.sort();
}

/** Resident set size in MiB (VmRSS of /proc/PID/status). */
export function rssMiB(pid: number): number {
  const match = /^VmRSS:\s+(\d+)\s+kB/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  if (!match) throw new Error(`no VmRSS for pid ${pid}`);
  return Number(match[1]) / 1024;
}

/** Every regular file under `dir`, recursively (symlinks are not followed). */
export function filesUnder(dir: string): string[] {
  const out: string[] = [];
  let entries: string[];
  try {
    entries = readdirSync(dir);
  } catch {
    return out;
  }
  for (const name of entries) {
    const file = path.join(dir, name);
    let stat;
    try {
      stat = lstatSync(file, { throwIfNoEntry: false });
    } catch {
      continue;
    }
    if (!stat) continue;
    if (stat.isDirectory()) out.push(...filesUnder(file));
    else if (stat.isFile()) out.push(file);
  }
  return out;
}

/** Files under `dir` whose bytes contain `needle` (binary files included). */
export function filesContaining(dir: string, needle: string): string[] {
  const bytes = Buffer.from(needle);
  return filesUnder(dir).filter((file) => {
    try {
      return readFileSync(file).includes(bytes);
    } catch {
      return false;
    }
  });
}
