/**
 * A clock that is obviously wrong: a Pi has no clock battery, and until NTP
 * has answered it may start at a date long past. Certificate checks of the
 * upstream then fail ("certificate is not yet valid"), so the person setting
 * the box up must be told why.
 */

/** No clock that is right can be earlier than the release this code belongs to */
const EARLIEST_PLAUSIBLE = Date.UTC(2026, 10, 1);

/** A sentence for the log and the dashboard when the clock cannot be right; undefined when it may be */
export function clockProblem(now = Date.now()): string | undefined {
  if (now >= EARLIEST_PLAUSIBLE) return undefined;
  const shown = new Date(now).toISOString().replace('T', ' ').slice(0, 16);
  return `The clock says ${shown} UTC, which cannot be right: certificate checks of the upstream fail until the time is set. Check that the box reaches an NTP server (on the SD card image: ntp= in edge-relay.txt)`;
}
