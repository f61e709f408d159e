import { createHash, randomBytes } from "node:crypto";
import { UsageError } from "../errors.js";

/** Job ids are Restate object keys and idempotency keys; keep them shell- and URL-safe. */
const ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/;

export function checkJobId(id: string): string {
  if (!ID_PATTERN.test(id)) {
    throw new UsageError(
      `job id "${id}" is not valid: use up to 128 letters, digits, '.', '_', ':' or '-'`,
    );
  }
  return id;
}

/** A content-addressed id: the same command on the same bytes with the same options is the same job. */
export function contentId(prefix: string, parts: (string | Buffer)[]): string {
  const hash = createHash("sha256");
  for (const part of parts) {
    // Length-prefix each part so ("ab","c") and ("a","bc") differ.
    const buffer = typeof part === "string" ? Buffer.from(part, "utf8") : part;
    hash.update(`${buffer.length}:`);
    hash.update(buffer);
  }
  return `${prefix}-${hash.digest("hex").slice(0, 24)}`;
}

export function randomId(prefix: string): string {
  return `${prefix}-${randomBytes(12).toString("hex")}`;
}
