/**
 * A pure function of a string with its answers kept, for the per-message
 * paths that ask about the same few devices again and again (parsing an
 * address each time showed in profiles). At `limit` answers the memory is
 * emptied: a LAN has a few dozen devices, and a scan of many addresses only
 * costs the parsing it would have cost anyway.
 */
export function remembered<T>(answer: (key: string) => T, limit = 1024): (key: string) => T {
  const answers = new Map<string, T>();
  return (key) => {
    if (answers.has(key)) return answers.get(key) as T;
    if (answers.size >= limit) answers.clear();
    const value = answer(key);
    answers.set(key, value);
    return value;
  };
}
