/**
 * A value built on first use and kept: for modules an idle relay does not
 * need (the admin page's routes and views), loaded with a dynamic import when
 * the first caller asks. A failed load is forgotten so the next call retries.
 */
export function lazy<T>(load: () => Promise<T>): () => Promise<T> {
  let pending: Promise<T> | undefined;
  return () => {
    pending ??= load().catch((err: unknown) => {
      pending = undefined;
      throw err;
    });
    return pending;
  };
}
