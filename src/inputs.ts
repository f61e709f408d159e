import { closeSync, constants, createReadStream, open as fsOpen, openSync } from "node:fs";
import { stat } from "node:fs/promises";
import net from "node:net";
import { addAbortSignal, type Readable } from "node:stream";
import tty, { isatty } from "node:tty";
import { promisify } from "node:util";
import { InterruptedError, UsageError } from "./errors.js";

/** One input of `pagent analyze`: its text, or why it was refused. */
export type Input =
  { label: string; text: string; bytes: Buffer } | { label: string; error: string };

export interface InputSources {
  files: string[];
  text?: string;
  stdin: Readable & { isTTY?: boolean };
  maxBytes: number;
  /** How long a named pipe may wait for a writer (default {@link DEFAULT_INPUT_TIMEOUT_MS}). */
  inputTimeoutMs?: number;
  /** Ctrl-C or SIGTERM: stop reading at once. */
  signal?: AbortSignal;
}

const decoder = new TextDecoder("utf-8", { fatal: true });

/**
 * A file name as one printable line: a name with a newline or another control character is shown
 * quoted with JSON escapes (`"a\\nb.txt"`), so it cannot break a header or an error line.
 */
export function printableName(name: string): string {
  // eslint-disable-next-line no-control-regex
  return /[\u0000-\u001f\u007f]/.test(name) ? JSON.stringify(name) : name;
}

/** Refuses what no model should be sent: empty, binary, non-UTF-8 or oversized input. */
export function checkBytes(label: string, bytes: Buffer, maxBytes: number): Input {
  if (bytes.length > maxBytes) {
    return {
      label,
      // A stream is read only up to the limit, so its full size is unknown here.
      error: `${printableName(label)}: input is larger than --max-bytes ${maxBytes}; split it or raise --max-bytes`,
    };
  }
  if (bytes.length === 0 || bytes.toString("utf8").trim() === "") {
    return { label, error: `${printableName(label)}: input is empty; give a file with text in it` };
  }
  if (bytes.includes(0))
    return {
      label,
      error: `${printableName(label)}: input looks binary (it has NUL bytes); give a text file`,
    };
  let text: string;
  try {
    text = decoder.decode(bytes);
  } catch {
    return {
      label,
      error: `${printableName(label)}: input is not valid UTF-8; convert it first (e.g. iconv -t UTF-8)`,
    };
  }
  return { label, text, bytes };
}

/** How long a named pipe may wait for a writer before it is refused (`--input-timeout`). */
export const DEFAULT_INPUT_TIMEOUT_MS = 30_000;

const interrupted = () =>
  new InterruptedError("interrupted while reading the inputs; nothing was submitted");

const openFd = promisify(fsOpen);

/**
 * Opens a named pipe (or a /dev/fd/N pipe) for reading. open() blocks until a writer appears, in
 * one of libuv's threads, and Node cannot exit while a thread is blocked: after the timeout or a
 * signal, release it by being the writer for an instant (a pipe with a waiting reader accepts a
 * non-blocking writer), then give up.
 */
async function openPipe(file: string, timeoutMs: number, signal?: AbortSignal): Promise<number> {
  const opening = openFd(file, constants.O_RDONLY);
  let timer: NodeJS.Timeout | undefined;
  let onAbort: (() => void) | undefined;
  const stopped = new Promise<"timeout" | "aborted">((resolve) => {
    timer = setTimeout(() => resolve("timeout"), timeoutMs);
    onAbort = () => resolve("aborted");
    if (signal?.aborted) onAbort();
    signal?.addEventListener("abort", onAbort, { once: true });
  });
  const winner = await Promise.race([opening, stopped]);
  clearTimeout(timer);
  signal?.removeEventListener("abort", onAbort!);
  if (typeof winner === "number") return winner;
  try {
    closeSync(openSync(file, constants.O_WRONLY | constants.O_NONBLOCK));
  } catch {
    // The open finished on its own meanwhile.
  }
  await opening.then(closeFd, () => undefined);
  if (winner === "aborted") throw interrupted();
  throw new InputRefused(
    `no writer opened this pipe within ${timeoutMs / 1000} s; start the writer first or raise --input-timeout`,
  );
}

function closeFd(fd: number): void {
  try {
    closeSync(fd);
  } catch {
    // already closed
  }
}

/** Why an input was refused while reading it; becomes that input's error line. */
class InputRefused extends Error {}

/** The error line of an input refused while it was read; anything else is rethrown. */
function refusedInput(label: string, error: unknown): Input {
  if (error instanceof InputRefused)
    return { label, error: `${printableName(label)}: ${error.message}` };
  throw error;
}

/**
 * A stream over an open descriptor that never blocks one of libuv's threads where that could
 * last: pipes and terminals are read through the event loop, files and other devices in chunks.
 */
function streamOf(fd: number, kind: "pipe" | "other"): Readable {
  if (kind === "pipe") return new net.Socket({ fd, readable: true, writable: false });
  if (isatty(fd)) return new tty.ReadStream(fd);
  return createReadStream("", { fd, autoClose: true });
}

async function readFileInput(
  file: string,
  maxBytes: number,
  timeoutMs: number,
  signal?: AbortSignal,
): Promise<Input> {
  let info;
  try {
    info = await stat(file);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    return {
      label: file,
      error:
        code === "ENOENT"
          ? `${printableName(file)}: no such file`
          : `${printableName(file)}: cannot read it (${code})`,
    };
  }
  if (info.isDirectory())
    return { label: file, error: `${printableName(file)}: is a directory; give the files in it` };
  // Refuse before reading a huge file; devices and pipes have no size, so reading stops at the limit.
  if (info.isFile() && info.size > maxBytes) {
    return {
      label: file,
      error: `${printableName(file)}: input is ${info.size} bytes, over --max-bytes ${maxBytes}; split it or raise --max-bytes`,
    };
  }
  try {
    const fd = info.isFIFO()
      ? await openPipe(file, timeoutMs, signal)
      : await openFd(file, constants.O_RDONLY);
    // A pipe whose writer stays silent must not hang the command either.
    const idleMs = info.isFIFO() ? timeoutMs : undefined;
    const stream = streamOf(fd, info.isFIFO() ? "pipe" : "other");
    return checkBytes(file, await readStream(stream, maxBytes, signal, idleMs), maxBytes);
  } catch (error) {
    if (error instanceof InterruptedError) throw error;
    if (error instanceof InputRefused) return refusedInput(file, error);
    return {
      label: file,
      error: `${printableName(file)}: cannot read it (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`,
    };
  }
}

/**
 * Reads at most `maxBytes + 1` bytes (one past the limit, so the size check still fires) and
 * stops: /dev/zero or `<(yes)` never end, and must not fill memory. A signal ends the read at once;
 * with `idleMs`, so does a silence that long (a writer that holds a pipe open and sends nothing).
 */
export async function readStream(
  stream: Readable,
  maxBytes: number,
  signal?: AbortSignal,
  idleMs?: number,
): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  if (signal) addAbortSignal(signal, stream);
  let idle: NodeJS.Timeout | undefined;
  const watchIdle = () => {
    if (idleMs === undefined) return;
    clearTimeout(idle);
    idle = setTimeout(
      () =>
        stream.destroy(
          new InputRefused(
            `no data arrived for ${idleMs / 1000} s; check the writer or raise --input-timeout`,
          ),
        ),
      idleMs,
    );
  };
  try {
    watchIdle();
    for await (const chunk of stream) {
      watchIdle();
      const buffer = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as string);
      chunks.push(buffer);
      size += buffer.length;
      if (size > maxBytes) break;
    }
  } catch (error) {
    if (signal?.aborted) throw interrupted();
    throw error;
  } finally {
    clearTimeout(idle);
    stream.destroy();
  }
  if (signal?.aborted) throw interrupted();
  return Buffer.concat(chunks).subarray(0, maxBytes + 1);
}

/** Stdin; a pipe (not a terminal, where a person types) may stay silent at most --input-timeout. */
async function readStdin(sources: InputSources): Promise<Input> {
  const idleMs = sources.stdin.isTTY
    ? undefined
    : (sources.inputTimeoutMs ?? DEFAULT_INPUT_TIMEOUT_MS);
  try {
    const bytes = await readStream(sources.stdin, sources.maxBytes, sources.signal, idleMs);
    return checkBytes("-", bytes, sources.maxBytes);
  } catch (error) {
    return refusedInput("-", error);
  }
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
        ? await readStdin(sources)
        : await readFileInput(
            file,
            sources.maxBytes,
            sources.inputTimeoutMs ?? DEFAULT_INPUT_TIMEOUT_MS,
            sources.signal,
          ),
    );
  }
  return inputs;
}
