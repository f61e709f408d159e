/**
 * The endpoint's side of capabilities: a refusal as a Restate error. Apart from capabilities.ts so
 * the CLI, which only records and compares grants, does not load the Restate SDK at start-up.
 */
import { TerminalError } from "@restatedev/restate-sdk";
import { refusal, type Asked, type Grants } from "./capabilities.js";

/** Throws the refusal as a TerminalError: retrying cannot make a capability appear. */
export function requireGranted(grants: Grants, asked: Asked): void {
  const refused = refusal(grants, asked);
  if (refused) throw new TerminalError(refused, { errorCode: 403 });
}
