import { realpath } from "node:fs/promises";
import path from "node:path";
import { ToolError } from "./types.js";

/** True when `child` is `parent` or below it; `/root2` is not inside `/root`. */
export function isInside(parent: string, child: string): boolean {
  const rel = path.relative(parent, child);
  if (rel === "") return true;
  // A name like "..data" is inside; only a leading ".." segment leaves the parent.
  return rel !== ".." && !rel.startsWith(`..${path.sep}`) && !path.isAbsolute(rel);
}

function errnoCode(err: unknown): string | undefined {
  if (typeof err !== "object" || err === null || !("code" in err)) return undefined;
  return typeof err.code === "string" ? err.code : undefined;
}

async function realRoots(roots: readonly string[]): Promise<string[]> {
  const resolved = await Promise.all(
    roots.map(async (root) => {
      try {
        return await realpath(root);
      } catch {
        return undefined; // a root that does not exist cannot contain anything
      }
    }),
  );
  return resolved.filter((r): r is string => r !== undefined);
}

/**
 * Realpath of the longest existing prefix plus the missing rest, so a missing file can still
 * be classified as inside or outside the roots without following anything that doesn't exist.
 */
async function realpathAllowingMissing(target: string): Promise<{ real: string; exists: boolean }> {
  let existing = target;
  const missing: string[] = [];
  for (;;) {
    try {
      const real = await realpath(existing);
      return { real: path.join(real, ...missing), exists: missing.length === 0 };
    } catch (err) {
      const code = errnoCode(err);
      const parent = path.dirname(existing);
      if ((code !== "ENOENT" && code !== "ENOTDIR") || parent === existing) throw err;
      missing.unshift(path.basename(existing));
      existing = parent;
    }
  }
}

/** Result of confining a user-supplied path to the allowed roots. */
export interface ConfinedPath {
  /** Fully resolved path (symlinks followed) that is inside one of the roots. */
  real: string;
  exists: boolean;
}

/**
 * Resolves `requested` against `cwd`, follows symlinks, and refuses anything whose real
 * location is outside every root. Containment is checked on real paths only, so `..`,
 * absolute paths and symlinks are all judged by where they actually lead.
 */
export async function confinePath(
  requested: string,
  roots: readonly string[],
  cwd: string,
  grantedRoots?: readonly string[],
): Promise<ConfinedPath> {
  if (requested.includes("\0")) throw new ToolError("invalid_args", "path contains a NUL byte");
  let allowed = await realRoots(roots);
  if (grantedRoots) {
    const granted = await realRoots(grantedRoots);
    allowed = allowed.filter((root) => granted.some((g) => isInside(g, root)));
  }
  if (allowed.length === 0) {
    throw new ToolError("refused", "no directories are allowed for file access in this job");
  }
  const target = path.resolve(cwd, requested);
  let resolved: { real: string; exists: boolean };
  try {
    resolved = await realpathAllowingMissing(target);
  } catch (err) {
    throw new ToolError("failed", `cannot resolve ${requested}: ${(err as Error).message}`, {
      cause: err,
    });
  }
  if (!allowed.some((root) => isInside(root, resolved.real))) {
    throw new ToolError(
      "refused",
      `${requested} is outside the allowed directories (${allowed.join(", ")})`,
    );
  }
  return resolved;
}

/** Maps fs errors to ToolErrors with short messages an LLM can act on. */
export function fsError(err: unknown, requested: string): ToolError {
  if (err instanceof ToolError) return err;
  const code = errnoCode(err);
  const reason =
    code === "ENOENT"
      ? "no such file or directory"
      : code === "EACCES" || code === "EPERM"
        ? "permission denied"
        : code === "ELOOP"
          ? "too many symbolic links"
          : code === "ENOTDIR"
            ? "not a directory"
            : code === "EISDIR"
              ? "is a directory"
              : (err as Error).message;
  return new ToolError("failed", `${requested}: ${reason}`, { cause: err });
}
