/**
 * The grants file, `$PAGENT_HOME/grants.json`: how the user's own CLI tells the embedded endpoint
 * (and the local cluster's) what its commands may use, with no setup and no endpoint restart. The CLI
 * adds what a command uses before submitting it; the endpoint reads the file again whenever it
 * changes. Only a file the endpoint's user owns and nobody else can write counts. It never holds a key.
 */
import { lstatSync, mkdirSync, readFileSync, renameSync, writeFileSync, type Stats } from "node:fs";
import path from "node:path";
import lockfile from "proper-lockfile";
import { z } from "zod";
import {
  emptyGrants,
  KINDS,
  mergeGrants,
  refusal,
  type Asked,
  type Grants,
  type GrantSource,
} from "../services/capabilities.js";

export function grantsPath(home: string): string {
  return path.join(home, "grants.json");
}

// Every kind of capability is a list; the kinds themselves are checked by services/capabilities.ts.
const fileSchema = z.object(
  Object.fromEntries(Object.keys(KINDS).map((kind) => [kind, z.array(z.unknown()).optional()])),
);

/** Why a grants file must be ignored: someone other than this user could have written it. */
function unsafe(stat: Stats): string | undefined {
  if (!stat.isFile()) return "is not a regular file";
  const uid = process.getuid?.();
  if (uid !== undefined && stat.uid !== uid) return `is owned by uid ${stat.uid}, not ${uid}`;
  // Windows has no such mode bits: there, the file's ACL (inherited from the user's profile) decides.
  if (process.platform !== "win32" && (stat.mode & 0o022) !== 0)
    return "is writable by other users";
  return undefined;
}

/** The grants in `file`; none when it is missing, unsafe or unreadable (`problem` says why). */
export function readGrantsFile(file: string): { grants: Grants; problem?: string } {
  let stat: Stats;
  try {
    stat = lstatSync(file);
  } catch {
    return { grants: emptyGrants() };
  }
  const why = unsafe(stat);
  if (why) return { grants: emptyGrants(), problem: `${file} ${why}; ignoring it` };
  try {
    const parsed = fileSchema.parse(JSON.parse(readFileSync(file, "utf8"))) as Asked;
    return { grants: mergeGrants(emptyGrants(), parsed) };
  } catch (error) {
    return {
      grants: emptyGrants(),
      problem: `${file} is not a valid grants file (${(error as Error).message.split("\n")[0]}); ignoring it`,
    };
  }
}

/**
 * Adds what a command uses to the grants file, under a lock so two commands never drop each other's
 * grants; written to a temporary file with mode 0600 and renamed, so the endpoint never reads half of it.
 * Nothing is written when everything is granted already (most commands).
 */
export async function recordGrants(home: string, asked: Asked): Promise<void> {
  const file = grantsPath(home);
  if (refusal(readGrantsFile(file).grants, asked) === undefined) return;
  mkdirSync(home, { recursive: true, mode: 0o700 });
  const release = await lockfile.lock(home, {
    lockfilePath: `${file}.lock`,
    retries: { retries: 100, minTimeout: 20, maxTimeout: 100, factor: 1 },
    stale: 10_000,
  });
  try {
    const merged = mergeGrants(readGrantsFile(file).grants, asked);
    const tmp = `${file}.${process.pid}.tmp`;
    writeFileSync(tmp, `${JSON.stringify(merged, null, 2)}\n`, { mode: 0o600 });
    renameSync(tmp, file);
  } finally {
    await release();
  }
}

/**
 * The endpoint's view of a grants file: read again when it changes (another inode, mtime or size),
 * so a command's new grants count at once. `onProblem` hears once about each unusable version.
 */
export function fileGrantSource(file: string, onProblem: (message: string) => void): GrantSource {
  let cached: { stamp: string; grants: Grants } | undefined;
  return () => {
    let stamp = "missing";
    try {
      const stat = lstatSync(file);
      stamp = `${stat.ino}:${stat.mtimeMs}:${stat.size}:${stat.mode}:${stat.uid}`;
    } catch {
      // No file yet: nothing granted.
    }
    if (cached?.stamp === stamp) return cached.grants;
    const { grants, problem } = readGrantsFile(file);
    if (problem) onProblem(problem);
    cached = { stamp, grants };
    return grants;
  };
}
