/**
 * Restate request identity (v1): restate-server signs every request to an endpoint with an ed25519
 * private key, and the endpoint (`withIdentityV1`) refuses what is not signed by a key it knows. So
 * only pagent's own Restate can call pagent's endpoint, though the endpoint listens on TCP (Restate
 * 1.7 cannot register an endpoint behind a unix socket).
 */
import { createPublicKey, generateKeyPairSync } from "node:crypto";
import { chmodSync, closeSync, openSync, readFileSync, writeSync } from "node:fs";

/** restate-server reads the private key from this file (`[worker.invoker]` in its config). */
export const IDENTITY_KEY_ENV = "RESTATE_WORKER__INVOKER__REQUEST_IDENTITY_PRIVATE_KEY_PEM_FILE";

const BASE58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";

/** Bitcoin-alphabet base58, as Restate encodes key ids; 32 bytes do not justify a dependency. */
function base58(bytes: Uint8Array): string {
  let n = BigInt(`0x${Buffer.from(bytes).toString("hex") || "0"}`);
  let out = "";
  while (n > 0n) {
    out = BASE58[Number(n % 58n)]! + out;
    n /= 58n;
  }
  for (const byte of bytes) {
    if (byte !== 0) break;
    out = `1${out}`;
  }
  return out;
}

/**
 * The `publickeyv1_…` form the SDK takes: base58 of the raw 32-byte ed25519 public key (the same id
 * restate-server logs as `kid` when it loads the private key).
 */
export function publicKeyOf(privateKeyPem: string): string {
  const jwk = createPublicKey(privateKeyPem).export({ format: "jwk" });
  return `publickeyv1_${base58(Buffer.from(jwk.x!, "base64url"))}`;
}

/** The public key of the key pair in `file`; undefined if there is none yet. */
export function readPublicKey(file: string): string | undefined {
  try {
    return publicKeyOf(readFileSync(file, "utf8"));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
    return undefined;
  }
}

/**
 * The key pair in `file`, created (0600, written once) if it does not exist yet; returns the public
 * key for the endpoint. `wx` makes a concurrent creator fail instead of overwriting the key.
 */
export function ensureIdentityKey(file: string): string {
  const existing = readPublicKey(file);
  if (existing) return existing;
  const { privateKey } = generateKeyPairSync("ed25519");
  const pem = privateKey.export({ type: "pkcs8", format: "pem" }) as string;
  const fd = openSync(file, "wx", 0o600);
  try {
    writeSync(fd, pem);
  } finally {
    closeSync(fd);
  }
  chmodSync(file, 0o600);
  return publicKeyOf(pem);
}
