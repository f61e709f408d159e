/**
 * How pagent prints a duration, everywhere (progress lines, tables, error messages):
 * - `measured` (a time something took): `850ms`, `1.0s`, `65.0s`, one decimal that always shows;
 * - `written` (a limit or wait, as a user would write it): `850ms`, `2s`, `1.5s`, `3m`;
 * - `age` (how long ago, in a table): `45s`, `12m`, `5h`, `3d`, rounded to the unit.
 * No duration (a task that has not finished) prints as nothing.
 */
export type DurationStyle = "measured" | "written" | "age";

export function formatDuration(ms: number | undefined, style: DurationStyle = "measured"): string {
  if (ms === undefined) return "";
  if (style === "age") {
    const s = Math.round(ms / 1000);
    if (s < 60) return `${s}s`;
    if (s < 3600) return `${Math.round(s / 60)}m`;
    if (s < 86_400) return `${Math.round(s / 3600)}h`;
    return `${Math.round(s / 86_400)}d`;
  }
  if (ms < 1000) return `${Math.round(ms)}ms`;
  if (style === "written" && ms >= 60_000 && ms % 60_000 === 0) return `${ms / 60_000}m`;
  const seconds = (ms / 1000).toFixed(1);
  return `${style === "written" ? +seconds : seconds}s`;
}
