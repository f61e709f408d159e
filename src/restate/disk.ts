import { closeSync, fstatSync, openSync, readSync, statfsSync } from "node:fs";

/**
 * restate-server's words when its data dir's disk is full (RocksDB and the partition processor
 * log them as ERROR/WARN lines). The server keeps answering health checks meanwhile, and a partition
 * whose store hit the error stays down after space returns: only a restart brings it back.
 */
const NO_SPACE = "No space left on device";

/** Free space below which a restart would fail again at once. */
export const MIN_FREE_BYTES = 64 * 1024 * 1024;

/** The last part of the log that is read: enough for the lines of the last minutes. */
const TAIL_BYTES = 256 * 1024;

export interface DiskTrouble {
  /** The log line that says so, without colours. */
  line: string;
  log: string;
  dataDir: string;
  freeBytes: number;
  /** Enough space is free again for a restart to hold. */
  spaceBack: boolean;
}

function tail(file: string, bytes: number): string {
  let fd: number | undefined;
  try {
    fd = openSync(file, "r");
    const size = fstatSync(fd).size;
    const length = Math.min(size, bytes);
    const buffer = Buffer.alloc(length);
    readSync(fd, buffer, 0, length, size - length);
    return buffer.toString("utf8");
  } catch {
    return "";
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

export function freeBytes(dir: string): number {
  try {
    const stats = statfsSync(dir);
    return stats.bavail * stats.bsize;
  } catch {
    return Number.POSITIVE_INFINITY;
  }
}

/**
 * Whether the server that started at `since` has hit a full disk: a "No space left on device" line
 * in its log written after it started (older lines belong to a server that was restarted since).
 */
export function diskTrouble(
  paths: { serverLog: string; data: string },
  since: string | undefined,
): DiskTrouble | undefined {
  // No server remembered: nothing in the log can be told apart from an older server's lines.
  if (!since) return undefined;
  const after = Date.parse(since);
  const lines = tail(paths.serverLog, TAIL_BYTES).split("\n");
  for (let i = lines.length - 1; i >= 0; i--) {
    // eslint-disable-next-line no-control-regex
    const line = lines[i]!.replace(/\u001b\[[0-9;]*m/g, "");
    if (!line.includes(NO_SPACE)) continue;
    const stamp = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{1,3})?)\d*Z/.exec(line);
    if (!stamp || Date.parse(`${stamp[1]}Z`) < after) return undefined;
    const free = freeBytes(paths.data);
    return {
      line: line.trim(),
      log: paths.serverLog,
      dataDir: paths.data,
      freeBytes: free,
      spaceBack: free >= MIN_FREE_BYTES,
    };
  }
  return undefined;
}

/** One line for the user: what is wrong, what pagent does about it, and where to read more. */
export function diskTroubleMessage(trouble: DiskTrouble): string {
  return trouble.spaceBack
    ? `the disk of ${trouble.dataDir} was full (restate-server: ${NO_SPACE}); space is back, so pagent restarts the server on the same data (log: ${trouble.log})`
    : `the disk of ${trouble.dataDir} is full (restate-server: ${NO_SPACE}, ${Math.floor(trouble.freeBytes / 1024 / 1024)} MiB free); jobs wait until you free space, then pagent restarts the server on the same data (log: ${trouble.log})`;
}
