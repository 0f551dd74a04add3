// Taken at load, so the polling keeps the real clock while a test mocks timers
const { setTimeout } = globalThis;

/** What a probe returns once the wait is over: any value but undefined, null, false, 0 or '' */
export type Truthy<T> = Exclude<T, false | null | undefined | 0 | ''>;

export interface PollOptions {
  /** Give up after this long (default 20 s) */
  timeoutMs?: number;
  /** Pause between two probes (default 100 ms) */
  everyMs?: number;
}

/**
 * The one polling helper of the tests: calls `probe` until it returns a truthy
 * value and resolves with it, or throws naming `what` after `timeoutMs`. A
 * probe that throws ends the wait with its error.
 */
export async function eventually<T>(
  what: string,
  probe: () => Promise<T> | T,
  { timeoutMs = 20_000, everyMs = 100 }: PollOptions = {},
): Promise<Truthy<T>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value) return value as Truthy<T>;
    if (Date.now() > deadline) {
      throw new Error(
        `Timed out after ${timeoutMs} ms waiting for ${what}; last value: ${JSON.stringify(value)}`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, everyMs));
  }
}
