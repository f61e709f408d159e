/**
 * Finding pagent's own processes without its state file (issue #13.4): what identifies them is on
 * their command line, which only they carry: restate-server's `--base-dir <our data dir>`, and the
 * endpoint's `--identity-key <the public key of our identity.pem>`. Linux /proc only; elsewhere
 * nothing is found and pagent behaves as before.
 */
import { readdirSync, readFileSync, statSync } from "node:fs";

export interface FoundProcess {
  pid: number;
  argv: string[];
  /** Its environment; readable because it is the user's own process. */
  env: Record<string, string>;
}

function readNulSeparated(file: string): string[] {
  return readFileSync(file, "utf8").split("\0").filter(Boolean);
}

/** The user's own live processes whose argv matches. */
export function findOwnProcesses(match: (argv: string[]) => boolean): FoundProcess[] {
  let entries: string[];
  try {
    entries = readdirSync("/proc");
  } catch {
    return [];
  }
  const uid = process.getuid?.();
  const found: FoundProcess[] = [];
  for (const entry of entries) {
    if (!/^\d+$/.test(entry)) continue;
    const pid = Number(entry);
    if (pid === process.pid) continue;
    try {
      if (uid !== undefined && statSync(`/proc/${pid}`).uid !== uid) continue;
      const argv = readNulSeparated(`/proc/${pid}/cmdline`);
      if (!match(argv)) continue;
      const env = Object.fromEntries(
        readNulSeparated(`/proc/${pid}/environ`).map((pair) => {
          const i = pair.indexOf("=");
          return [pair.slice(0, i), pair.slice(i + 1)];
        }),
      );
      found.push({ pid, argv, env });
    } catch {
      // gone meanwhile, or a zombie
    }
  }
  return found;
}

/** The value after `flag` in argv. */
export function argValue(argv: string[], flag: string): string | undefined {
  const i = argv.indexOf(flag);
  return i >= 0 ? argv[i + 1] : undefined;
}
