import { constants, type Dirent } from "node:fs";
import { open, readdir, stat } from "node:fs/promises";
import path from "node:path";
import { z } from "zod";
import { defineTool, throwIfAborted } from "./define-tool.js";
import { confinePath, fsError } from "./path-guard.js";
import { ToolError, type ToolDefinition } from "./types.js";

/** Default number of bytes read_file returns before truncating. */
export const DEFAULT_READ_MAX_BYTES = 256 * 1024;
/** Default number of entries list_files returns before truncating. */
export const DEFAULT_LIST_MAX_ENTRIES = 500;

// O_NOFOLLOW: the checked real path is opened, so a symlink swapped in afterwards is not followed.
// O_NONBLOCK: opening a FIFO must not hang; fstat then rejects it as not a regular file.
const OPEN_FLAGS = constants.O_RDONLY | (constants.O_NOFOLLOW ?? 0) | (constants.O_NONBLOCK ?? 0);

const readArgs = z.strictObject({
  path: z.string().min(1).describe("File path, relative to the working directory or absolute"),
});

/** read_file with a configurable size cap (bytes). */
export function createReadFileTool(
  options: { maxBytes?: number } = {},
): ToolDefinition<z.infer<typeof readArgs>> {
  const maxBytes = options.maxBytes ?? DEFAULT_READ_MAX_BYTES;
  return defineTool({
    name: "read_file",
    description:
      `Read a UTF-8 text file inside the allowed directories. Files larger than ${maxBytes} ` +
      "bytes are truncated. Binary files are rejected.",
    readOnly: true,
    argsSchema: readArgs,
    run: async (args, ctx) => {
      throwIfAborted(ctx.signal, "read_file");
      const { real, exists } = await confinePath(
        args.path,
        ctx.allowRoots,
        ctx.cwd,
        ctx.grantedRoots,
      );
      if (!exists) throw new ToolError("failed", `${args.path}: no such file`);
      let handle;
      try {
        handle = await open(real, OPEN_FLAGS);
      } catch (err) {
        throw fsError(err, args.path);
      }
      try {
        const info = await handle.stat();
        if (info.isDirectory()) {
          throw new ToolError("failed", `${args.path} is a directory; use list_files`);
        }
        if (!info.isFile()) throw new ToolError("failed", `${args.path} is not a regular file`);
        // One byte more than the cap tells truncation apart from a file of exactly maxBytes.
        const buffer = Buffer.alloc(maxBytes + 1);
        let filled = 0;
        while (filled < buffer.length) {
          const { bytesRead } = await handle.read(buffer, filled, buffer.length - filled, filled);
          if (bytesRead === 0) break;
          filled += bytesRead;
        }
        const truncated = filled > maxBytes;
        const bytes = buffer.subarray(0, Math.min(filled, maxBytes));
        if (bytes.includes(0)) {
          throw new ToolError(
            "failed",
            `${args.path} looks like a binary file (contains NUL bytes)`,
          );
        }
        // stream: true holds back a multi-byte character cut in half by the cap.
        const text = new TextDecoder("utf-8").decode(bytes, { stream: truncated });
        if (!truncated) return text === "" ? "(empty file)" : text;
        return `${text}\n[truncated: showing the first ${bytes.length} of ${info.size} bytes]`;
      } catch (err) {
        throw fsError(err, args.path);
      } finally {
        await handle.close();
      }
    },
  });
}

const listArgs = z.strictObject({
  path: z
    .string()
    .optional()
    .describe('Directory path, relative to the working directory or absolute; defaults to "."'),
});

async function entryLine(dir: string, entry: Dirent): Promise<string> {
  if (entry.isDirectory()) return `${entry.name}/`;
  if (entry.isSymbolicLink()) {
    // Shown as what it points to; read_file re-checks confinement when it is followed.
    try {
      return (await stat(path.join(dir, entry.name))).isDirectory() ? `${entry.name}/` : entry.name;
    } catch {
      return entry.name;
    }
  }
  return entry.name;
}

/** list_files with a configurable entry cap. */
export function createListFilesTool(
  options: { maxEntries?: number } = {},
): ToolDefinition<z.infer<typeof listArgs>> {
  const maxEntries = options.maxEntries ?? DEFAULT_LIST_MAX_ENTRIES;
  return defineTool({
    name: "list_files",
    description:
      "List a directory inside the allowed directories, one entry per line, sorted; " +
      `directories end with "/". At most ${maxEntries} entries are shown.`,
    readOnly: true,
    argsSchema: listArgs,
    run: async (args, ctx) => {
      throwIfAborted(ctx.signal, "list_files");
      const requested = args.path?.trim() || ".";
      const { real, exists } = await confinePath(
        requested,
        ctx.allowRoots,
        ctx.cwd,
        ctx.grantedRoots,
      );
      if (!exists) throw new ToolError("failed", `${requested}: no such directory`);
      let entries: Dirent[];
      try {
        entries = await readdir(real, { withFileTypes: true });
      } catch (err) {
        throw fsError(err, requested);
      }
      if (entries.length === 0) return "(empty directory)";
      // Code-unit order rather than locale order, so output is the same on every machine.
      entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
      const shown = entries.slice(0, maxEntries);
      const lines = await Promise.all(shown.map((entry) => entryLine(real, entry)));
      if (entries.length > maxEntries) {
        lines.push(`[truncated: showing ${maxEntries} of ${entries.length} entries]`);
      }
      return lines.join("\n");
    },
  });
}

/** read_file with default limits. */
export const readFileTool = createReadFileTool();
/** list_files with default limits. */
export const listFilesTool = createListFilesTool();
