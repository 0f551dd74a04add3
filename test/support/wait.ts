/** Polls `probe` until it returns a truthy value; bounded by `timeoutMs` */
type Truthy<T> = Exclude<T, false | null | undefined | 0 | ''>;

export async function waitUntil<T>(probe: () => Promise<T> | T, timeoutMs = 15_000, what = 'condition'): Promise<Truthy<T>> {
  const deadline = Date.now() + timeoutMs;
  let last: T | undefined;
  while (Date.now() < deadline) {
    last = await probe();
    if (last) return last as Truthy<T>;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`Timed out after ${timeoutMs} ms waiting for ${what}; last value: ${JSON.stringify(last)}`);
}
