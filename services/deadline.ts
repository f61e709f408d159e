/** A signal that aborts with `parent`, or with a TimeoutError once its time is up. */
export interface Deadline {
  signal: AbortSignal;
  /** Stops the timer and lets go of the parent; call it when the work is over. */
  clear(): void;
}

/**
 * A signal that aborts when `parent` does or after `ms`, whichever comes first.
 *
 * Not `AbortSignal.any([parent, AbortSignal.timeout(ms)])`: on Node 20 that holds the timeout
 * signal only weakly, so a garbage collection can drop it before it fires and a hung call then
 * never ends (seen in the end-to-end tests, reproduced with `--expose-gc`). A plain timer keeps
 * the controller alive until it fires or is cleared.
 */
export function deadline(parent: AbortSignal, ms: number): Deadline {
  const controller = new AbortController();
  const onParentAbort = () => controller.abort(parent.reason);
  const timer = setTimeout(
    () => controller.abort(new DOMException(`timed out after ${ms} ms`, "TimeoutError")),
    ms,
  );
  if (parent.aborted) onParentAbort();
  else parent.addEventListener("abort", onParentAbort, { once: true });
  return {
    signal: controller.signal,
    clear: () => {
      clearTimeout(timer);
      parent.removeEventListener("abort", onParentAbort);
    },
  };
}
