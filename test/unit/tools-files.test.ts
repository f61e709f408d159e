import { mkdir, mkdtemp, realpath, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  createListFilesTool,
  createReadFileTool,
  listFilesTool,
  readFileTool,
  type ToolContext,
} from "../../services/tools/index.js";

let base: string;
let root: string;
let ctx: ToolContext;

beforeAll(async () => {
  // realpath: on macOS tmpdir() is itself behind a symlink.
  base = await realpath(await mkdtemp(path.join(tmpdir(), "pagent-tools-")));
  root = path.join(base, "root");
  await mkdir(path.join(root, "sub", "deep"), { recursive: true });
  await mkdir(path.join(base, "root2"));
  await writeFile(path.join(root, "hello.txt"), "hello\nworld\n");
  await writeFile(path.join(root, "empty.txt"), "");
  await writeFile(path.join(root, "sub", "note.md"), "# note");
  await writeFile(path.join(root, "..data"), "dots are fine");
  await writeFile(path.join(root, "bin.dat"), Buffer.from([0x41, 0x00, 0x42]));
  await writeFile(path.join(base, "secret.txt"), "top secret");
  await writeFile(path.join(base, "root2", "other.txt"), "sibling with a shared prefix");
  await symlink(path.join(base, "secret.txt"), path.join(root, "link-out"));
  await symlink(path.join(base, "root2"), path.join(root, "dir-out"));
  await symlink(path.join(root, "hello.txt"), path.join(root, "link-in"));
  await symlink(path.join(root, "sub"), path.join(root, "dir-in"));
  ctx = { allowRoots: [root], allowHosts: [], signal: new AbortController().signal, cwd: root };
});

afterAll(async () => {
  await rm(base, { recursive: true, force: true });
});

function read(p: string, context: ToolContext = ctx): Promise<string> {
  return readFileTool.run(readFileTool.parse({ path: p }), context);
}

describe("read_file", () => {
  it("reads relative and absolute paths inside the root", async () => {
    expect(await read("hello.txt")).toBe("hello\nworld\n");
    expect(await read(path.join(root, "sub", "note.md"))).toBe("# note");
    expect(await read("sub/../hello.txt")).toBe("hello\nworld\n");
    expect(await read("..data")).toBe("dots are fine");
    expect(await read("empty.txt")).toBe("(empty file)");
  });

  it("follows symlinks that stay inside the root", async () => {
    expect(await read("link-in")).toBe("hello\nworld\n");
    expect(await read("dir-in/note.md")).toBe("# note");
  });

  it.each([
    ["../secret.txt", "a .. escape"],
    ["sub/../../secret.txt", "a nested .. escape"],
    ["/etc/hostname", "an absolute path outside"],
    ["link-out", "a symlink to a file outside"],
    ["dir-out/other.txt", "a symlinked directory outside"],
    ["../root2/other.txt", "a sibling sharing the root's prefix"],
    ["../nothing-here.txt", "a missing file outside"],
  ])("refuses %s (%s)", async (p) => {
    await expect(read(p)).rejects.toMatchObject({ kind: "refused", retryable: false });
  });

  it("refuses the /root2 vs /root prefix trick with an absolute path", async () => {
    await expect(read(path.join(base, "root2", "other.txt"))).rejects.toMatchObject({
      kind: "refused",
      message: expect.stringMatching(/outside the allowed directories/) as unknown,
    });
  });

  it("refuses everything when no root is allowed", async () => {
    await expect(read("hello.txt", { ...ctx, allowRoots: [] })).rejects.toMatchObject({
      kind: "refused",
    });
  });

  it("accepts a root given through a symlink", async () => {
    const alias = path.join(base, "alias");
    await symlink(root, alias);
    expect(await read("hello.txt", { ...ctx, allowRoots: [alias], cwd: alias })).toBe(
      "hello\nworld\n",
    );
  });

  it("ignores a job's root that leads outside the endpoint's granted roots when it runs", async () => {
    // The job named root/dir-out, checked while it was a directory inside the grant; by the time the
    // tool runs it is a symlink to ../root2.
    const swapped = { ...ctx, allowRoots: [path.join(root, "dir-out")], grantedRoots: [root] };
    await expect(read(path.join(base, "root2", "other.txt"), swapped)).rejects.toMatchObject({
      kind: "refused",
    });
    expect(await read("hello.txt", { ...ctx, grantedRoots: [base] })).toBe("hello\nworld\n");
  });

  it("fails on missing, binary and directory targets", async () => {
    await expect(read("missing.txt")).rejects.toMatchObject({
      kind: "failed",
      message: expect.stringMatching(/no such file/) as unknown,
    });
    await expect(read("bin.dat")).rejects.toMatchObject({
      kind: "failed",
      message: expect.stringMatching(/binary/) as unknown,
    });
    await expect(read("sub")).rejects.toMatchObject({
      kind: "failed",
      message: expect.stringMatching(/directory/) as unknown,
    });
  });

  it("truncates large files without splitting a character", async () => {
    const tool = createReadFileTool({ maxBytes: 10 });
    await writeFile(path.join(root, "big.txt"), "abcdefghié-rest-of-file");
    const out = await tool.run({ path: "big.txt" }, ctx);
    expect(out).toBe("abcdefghi\n[truncated: showing the first 10 of 24 bytes]");
    await writeFile(path.join(root, "exact.txt"), "0123456789");
    expect(await tool.run({ path: "exact.txt" }, ctx)).toBe("0123456789");
  });

  it("truncates at 256 KiB by default", async () => {
    await writeFile(path.join(root, "huge.txt"), "x".repeat(300 * 1024));
    const out = await read("huge.txt");
    expect(out.startsWith("x".repeat(256 * 1024) + "\n[truncated")).toBe(true);
  });

  it("rejects invalid arguments", () => {
    expect(() => readFileTool.parse({})).toThrow(/path/);
    expect(() => readFileTool.parse({ path: "" })).toThrow(/path/);
  });
});

describe("list_files", () => {
  const list = (p?: string, context: ToolContext = ctx): Promise<string> =>
    listFilesTool.run(listFilesTool.parse(p === undefined ? {} : { path: p }), context);

  it("lists the working directory by default, sorted, with / on directories", async () => {
    const lines = (await list()).split("\n");
    expect(lines).toEqual([...lines].sort());
    expect(lines).toContain("sub/");
    expect(lines).toContain("hello.txt");
    expect(lines).toContain("dir-in/");
    expect(lines).toContain("link-in");
  });

  it("lists subdirectories", async () => {
    expect(await list("sub")).toBe("deep/\nnote.md");
    expect(await list("sub/deep")).toBe("(empty directory)");
  });

  it.each(["..", "../root2", "dir-out", "/"])("refuses %s", async (p) => {
    await expect(list(p)).rejects.toMatchObject({ kind: "refused" });
  });

  it("fails on a file or a missing directory", async () => {
    await expect(list("hello.txt")).rejects.toMatchObject({ kind: "failed" });
    await expect(list("nope")).rejects.toMatchObject({
      kind: "failed",
      message: expect.stringMatching(/no such directory/) as unknown,
    });
  });

  it("caps the number of entries", async () => {
    const many = path.join(root, "many");
    await mkdir(many);
    await Promise.all(
      Array.from({ length: 12 }, (_, i) =>
        writeFile(path.join(many, `f${String(i).padStart(2, "0")}`), ""),
      ),
    );
    const out = await createListFilesTool({ maxEntries: 5 }).run({ path: "many" }, ctx);
    expect(out).toBe("f00\nf01\nf02\nf03\nf04\n[truncated: showing 5 of 12 entries]");
  });
});
