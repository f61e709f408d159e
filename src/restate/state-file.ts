/**
 * What pagent remembers between commands about the processes it started (`runtime.json`,
 * `cluster/cluster.json`): one private JSON file, changed only under a lock so two commands never
 * start the same thing twice, and replaced atomically so a reader never sees half of it.
 */
import { chmodSync, mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import lockfile from "proper-lockfile";

/**
 * A directory only the user can enter: the embedded server's sockets, data and logs live below it,
 * so no other local user can reach or read them (a home made by an older pagent is tightened too).
 */
export function makePrivateDir(dir: string): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  chmodSync(dir, 0o700);
}

/** The parsed file, or undefined when it is missing or not JSON (a lost state is found again from /proc). */
export function readStateFile<T>(file: string): T | undefined {
  try {
    return JSON.parse(readFileSync(file, "utf8")) as T;
  } catch {
    return undefined;
  }
}

/** Writes the state readable by the user only; rename is atomic, so readers see the old or the new state. */
export function writeStateFile(file: string, state: unknown): void {
  writeFileSync(`${file}.tmp`, JSON.stringify(state, null, 2), { mode: 0o600 });
  renameSync(`${file}.tmp`, file);
}

/**
 * Runs `fn` holding `lockFile` (made in the private `dir`). Starting a cluster holds it for up to a
 * minute and a half, so a waiting command waits up to a minute; the holder refreshes the lock every
 * 15 s, and a lock 30 s old is a dead command's: a busy machine that delays one refresh by seconds
 * does not hand the lock to a second command meanwhile.
 */
export async function withStateLock<T>(
  dir: string,
  lockFile: string,
  fn: () => Promise<T>,
): Promise<T> {
  makePrivateDir(dir);
  const release = await lockfile.lock(dir, {
    lockfilePath: lockFile,
    retries: { retries: 1200, minTimeout: 50, maxTimeout: 100, factor: 1 },
    stale: 30_000,
  });
  try {
    return await fn();
  } finally {
    await release();
  }
}
