export type JsonObject = { [key: string]: unknown };

export const isPlainObject = (value: unknown): value is JsonObject =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

/** Key names that would reach an object's prototype if merged: refused wherever settings come in */
const PROTOTYPE_KEYS = new Set(['__proto__', 'constructor', 'prototype']);

/** Objects merge key by key; arrays and scalars from `over` replace those in `base` */
export function deepMerge(base: unknown, over: unknown): unknown {
  if (!isPlainObject(base) || !isPlainObject(over)) return over === undefined ? base : over;
  const merged: JsonObject = { ...base };
  for (const [key, value] of Object.entries(over)) {
    // Refused with a clear error before any merge (prototypeKeyPath); skipped here too, so no caller can reach the prototype
    if (PROTOTYPE_KEYS.has(key)) continue;
    merged[key] = deepMerge(base[key], value);
  }
  return merged;
}

/** Where the first key named "__proto__", "constructor" or "prototype" is ("delivery.__proto__"), if any */
export function prototypeKeyPath(value: unknown, at = ''): string | undefined {
  const children: [path: string, child: unknown, reserved: boolean][] = Array.isArray(value)
    ? value.map((item, index) => [`${at}[${index}]`, item, false])
    : isPlainObject(value)
      ? Object.entries(value).map(([key, child]) => [
          at ? `${at}.${key}` : key,
          child,
          PROTOTYPE_KEYS.has(key),
        ])
      : [];
  for (const [path, child, reserved] of children) {
    const found = reserved ? path : prototypeKeyPath(child, path);
    if (found !== undefined) return found;
  }
  return undefined;
}

export function valueAt(config: unknown, key: readonly string[]): unknown {
  return key.reduce<unknown>((node, part) => (node as JsonObject | undefined)?.[part], config);
}

/** A patch that sets one key: {"a": {"b": value}} for ["a", "b"] */
export const patchAt = (key: readonly string[], value: unknown): JsonObject =>
  key.reduceRight<unknown>((inner, part) => ({ [part]: inner }), value) as JsonObject;
