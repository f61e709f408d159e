import { closeSync, fstatSync, openSync, readSync, statfsSync, statSync } from "node:fs";

/**
 * restate-server's words when its data dir's disk is full (RocksDB and the partition processor
 * log them as ERROR/WARN lines). The server keeps answering health checks meanwhile, and a partition
 * whose store hit the error stays down after space returns: only a restart brings it back.
 */
const NO_SPACE = "No space left on device";

/** Free space below which a restart would fail again at once. */
export const MIN_FREE_BYTES = 64 * 1024 * 1024;

export interface DiskTrouble {
  /** The log line that says so, without colours. */
  line: string;
  log: string;
  dataDir: string;
  freeBytes: number;
  /** Enough space is free again for a restart to hold. */
  spaceBack: boolean;
}

/**
 * How far back a process first looks in the log. While a partition is down every query of a
 * watching command adds a warning line (several KB a second), so the line that matters scrolls
 * back quickly; after the first look only what was written since is read.
 */
const FIRST_SCAN_BYTES = 16 * 1024 * 1024;

/** Per log and server start: how far the log has been read, and the line found, if any. */
const scans = new Map<string, { offset: number; line?: string }>();

function readFrom(file: string, offset: number): Buffer {
  let fd: number | undefined;
  try {
    fd = openSync(file, "r");
    const size = fstatSync(fd).size;
    const buffer = Buffer.alloc(Math.max(0, size - offset));
    readSync(fd, buffer, 0, buffer.length, offset);
    return buffer;
  } catch {
    return Buffer.alloc(0);
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

/** The last "No space left on device" line written at or after `after` (ms), reading only new bytes. */
function noSpaceLine(log: string, since: string, after: number): string | undefined {
  const key = `${log}\0${since}`;
  let scan = scans.get(key);
  if (!scan) {
    scan = { offset: 0 };
    scans.set(key, scan);
    try {
      scan.offset = Math.max(0, statSync(log).size - FIRST_SCAN_BYTES);
    } catch {
      // no log yet
    }
  }
  if (scan.line) return scan.line;
  const bytes = readFrom(log, scan.offset);
  // The last, unfinished line is read again next time, but it counts now: the log is often on the
  // full disk itself, so the line that says so can stay cut off, without its newline, for good.
  scan.offset += bytes.lastIndexOf(0x0a) + 1;
  for (const raw of bytes.toString("utf8").split("\n")) {
    if (!raw.includes(NO_SPACE)) continue;
    // eslint-disable-next-line no-control-regex
    const line = raw.replace(/\u001b\[[0-9;]*m/g, "").trim();
    const stamp = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{1,3})?)\d*Z/.exec(line);
    if (stamp && Date.parse(`${stamp[1]}Z`) >= after) scan.line = line;
  }
  return scan.line;
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
  const line = noSpaceLine(paths.serverLog, since, Date.parse(since));
  if (!line) return undefined;
  const free = freeBytes(paths.data);
  return {
    line,
    log: paths.serverLog,
    dataDir: paths.data,
    freeBytes: free,
    spaceBack: free >= MIN_FREE_BYTES,
  };
}

/** One line for the user: what is wrong, what pagent does about it, and where to read more. */
export function diskTroubleMessage(trouble: DiskTrouble): string {
  return trouble.spaceBack
    ? `the disk of ${trouble.dataDir} was full (restate-server: ${NO_SPACE}); space is back, so pagent restarts the server on the same data (log: ${trouble.log})`
    : `the disk of ${trouble.dataDir} is full (restate-server: ${NO_SPACE}, ${Math.floor(trouble.freeBytes / 1024 / 1024)} MiB free); jobs wait until you free space, then pagent restarts the server on the same data (log: ${trouble.log})`;
}
