import { open, stat } from "node:fs/promises";
import type { Readable } from "node:stream";
import { UsageError } from "./errors.js";

/** One input of `pagent analyze`: its text, or why it was refused. */
export type Input =
  { label: string; text: string; bytes: Buffer } | { label: string; error: string };

export interface InputSources {
  files: string[];
  text?: string;
  stdin: Readable & { isTTY?: boolean };
  maxBytes: number;
}

const decoder = new TextDecoder("utf-8", { fatal: true });

/** Refuses what no model should be sent: empty, binary, non-UTF-8 or oversized input. */
export function checkBytes(label: string, bytes: Buffer, maxBytes: number): Input {
  if (bytes.length > maxBytes) {
    return {
      label,
      // A stream is read only up to the limit, so its full size is unknown here.
      error: `${label}: input is larger than --max-bytes ${maxBytes}; split it or raise --max-bytes`,
    };
  }
  if (bytes.length === 0 || bytes.toString("utf8").trim() === "") {
    return { label, error: `${label}: input is empty; give a file with text in it` };
  }
  if (bytes.includes(0))
    return { label, error: `${label}: input looks binary (it has NUL bytes); give a text file` };
  let text: string;
  try {
    text = decoder.decode(bytes);
  } catch {
    return {
      label,
      error: `${label}: input is not valid UTF-8; convert it first (e.g. iconv -t UTF-8)`,
    };
  }
  return { label, text, bytes };
}

async function readFileInput(file: string, maxBytes: number): Promise<Input> {
  let info;
  try {
    info = await stat(file);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    return {
      label: file,
      error: code === "ENOENT" ? `${file}: no such file` : `${file}: cannot read it (${code})`,
    };
  }
  if (info.isDirectory())
    return { label: file, error: `${file}: is a directory; give the files in it` };
  // Refuse before reading a huge file into memory.
  if (info.size > maxBytes) {
    return {
      label: file,
      error: `${file}: input is ${info.size} bytes, over --max-bytes ${maxBytes}; split it or raise --max-bytes`,
    };
  }
  try {
    const handle = await open(file, "r");
    try {
      return checkBytes(file, await handle.readFile(), maxBytes);
    } finally {
      await handle.close();
    }
  } catch (error) {
    return {
      label: file,
      error: `${file}: cannot read it (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`,
    };
  }
}

export async function readStream(stream: Readable, maxBytes: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of stream) {
    const buffer = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as string);
    size += buffer.length;
    chunks.push(buffer);
    // Keep one byte past the limit so the size check still fires, without buffering the rest.
    if (size > maxBytes) break;
  }
  return Buffer.concat(chunks);
}

/** Collects the inputs in the order given; each bad one is reported, not thrown, so the rest can run. */
export async function readInputs(sources: InputSources): Promise<Input[]> {
  if (sources.text !== undefined) {
    if (sources.files.length > 0) throw new UsageError("give either --text or files, not both");
    return [checkBytes("text", Buffer.from(sources.text, "utf8"), sources.maxBytes)];
  }
  let files = sources.files;
  if (files.length === 0) {
    if (sources.stdin.isTTY) {
      throw new UsageError('nothing to analyze: give a FILE, - for stdin, or --text "..."');
    }
    files = ["-"];
  }
  if (files.filter((f) => f === "-").length > 1)
    throw new UsageError("stdin (-) can be given only once");
  const inputs: Input[] = [];
  for (const file of files) {
    inputs.push(
      file === "-"
        ? checkBytes("-", await readStream(sources.stdin, sources.maxBytes), sources.maxBytes)
        : await readFileInput(file, sources.maxBytes),
    );
  }
  return inputs;
}
