import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { diskTrouble } from "../../src/restate/disk.js";

const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

function serverLog(text: string) {
  const dir = mkdtempSync(path.join(tmpdir(), "pagent-disk-"));
  dirs.push(dir);
  const serverLog = path.join(dir, "restate.log");
  writeFileSync(serverLog, text);
  return { serverLog, data: dir };
}

const since = "2026-12-01T20:10:00.000Z";
const noSpace =
  "2026-12-01T20:10:15.956194Z ERROR restate_rocksdb::logging: RocksDB background error: IO error: No space left on device: While appending to file: db/000020.sst";

describe("a full disk, read from restate-server's log", () => {
  it("is found in a line the full disk cut off before its newline", () => {
    // The log lives on the full disk: its last line stops at a page boundary and stays that way.
    const paths = serverLog(`2026-12-01T20:10:11.6Z WARN query failed\n${noSpace.slice(0, 150)}`);
    expect(diskTrouble(paths, since)?.line).toBe(noSpace.slice(0, 150));
  });

  it("ignores what a server that ran before this one wrote", () => {
    const paths = serverLog(`${noSpace}\n`);
    expect(diskTrouble(paths, "2026-12-01T20:11:00.000Z")).toBeUndefined();
  });
});
