import { z } from "zod";
import { defineTool } from "./define-tool.js";
import { ToolError } from "./types.js";

function formatterFor(timeZone: string): Intl.DateTimeFormat {
  try {
    return new Intl.DateTimeFormat("en-US", {
      timeZone,
      hourCycle: "h23",
      year: "numeric",
      month: "2-digit",
      day: "2-digit",
      hour: "2-digit",
      minute: "2-digit",
      second: "2-digit",
      weekday: "long",
      timeZoneName: "longOffset",
    });
  } catch {
    throw new ToolError(
      "invalid_args",
      `unknown time zone '${timeZone}': use an IANA name such as UTC, Europe/Berlin or America/New_York`,
    );
  }
}

/** "2024-05-01T14:03:12+02:00 Europe/Berlin (Wednesday)" for the given instant and IANA zone. */
export function formatInZone(date: Date, timeZone: string): string {
  const formatter = formatterFor(timeZone);
  const parts = Object.fromEntries(formatter.formatToParts(date).map((p) => [p.type, p.value]));
  // longOffset renders as "GMT+02:00", or plain "GMT" for a zero offset.
  const offset = (parts.timeZoneName ?? "GMT").replace(/^GMT/, "") || "+00:00";
  // ICU canonicalises to legacy names (Asia/Kolkata → Asia/Calcutta); keep the caller's
  // spelling unless only the letter case differs.
  const resolved = formatter.resolvedOptions().timeZone;
  const zone = resolved.toLowerCase() === timeZone.toLowerCase() ? resolved : timeZone;
  const iso = `${parts.year}-${parts.month}-${parts.day}T${parts.hour}:${parts.minute}:${parts.second}${offset}`;
  return `${iso} ${zone} (${parts.weekday})`;
}

const argsSchema = z.strictObject({
  timezone: z
    .string()
    .optional()
    .describe("IANA time zone name, e.g. Europe/Berlin; defaults to UTC"),
});

/** Current date and time in an IANA time zone. */
export const clockTool = defineTool({
  name: "clock",
  description:
    "Get the current date and time (ISO 8601 with UTC offset, zone name and weekday) in an " +
    "IANA time zone such as Europe/Berlin. Defaults to UTC.",
  readOnly: true,
  pure: true,
  argsSchema,
  run: (args, ctx) => {
    const zone = args.timezone?.trim() || "UTC";
    return Promise.resolve(formatInZone(ctx.now?.() ?? new Date(), zone));
  },
});
