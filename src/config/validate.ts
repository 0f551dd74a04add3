import type { z } from 'zod';
import { ConfigError } from '../errors.js';
import { DEFAULT_CONFIG } from './defaults.js';
import { issueSentence } from './issue-text.js';
import { deepMerge, isPlainObject, prototypeKeyPath } from './merge.js';
import { configSchema, type Config } from './schema.js';

function keyPath(path: readonly PropertyKey[]): string {
  return path.reduce<string>(
    (text, part) =>
      typeof part === 'number'
        ? `${text}[${part}]`
        : text
          ? `${text}.${String(part)}`
          : String(part),
    '',
  );
}

export function describeIssue(issue: z.core.$ZodIssue): string {
  const at = keyPath(issue.path);
  if (issue.code === 'unrecognized_keys') {
    return issue.keys.map((key) => `Unknown config key "${at ? `${at}.${key}` : key}"`).join('; ');
  }
  return `Config key "${at}": ${issueSentence(issue)}`;
}

/** JSON has no comments; a key named "//" holds one, at any level, and is ignored */
export function stripComments(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(stripComments);
  if (!isPlainObject(value)) return value;
  return Object.fromEntries(
    Object.entries(value)
      .filter(([key]) => key !== '//')
      .map(([key, v]) => [key, stripComments(v)]),
  );
}

/** A key that could reach an object's prototype: refused, never silently dropped, so the admin sees that nothing of it applied */
export function prototypeKeyProblem(value: unknown): string | undefined {
  const at = prototypeKeyPath(value);
  return at === undefined
    ? undefined
    : `Config key "${at}" is not allowed: "__proto__", "constructor" and "prototype" are reserved names`;
}

/** Throws ConfigError naming the first reserved key in `value` (a config file, a settings patch) */
export function refusePrototypeKeys(value: unknown, source: string): void {
  const reserved = prototypeKeyProblem(value);
  if (reserved) throw new ConfigError(`Invalid configuration in ${source}:\n${reserved}`);
}

/** Overrides merged over the defaults and validated; throws ConfigError naming the first bad key */
export function resolveConfig(overrides: unknown, source: string): Config {
  refusePrototypeKeys(overrides, source);
  const result = configSchema.safeParse(deepMerge(DEFAULT_CONFIG, stripComments(overrides ?? {})));
  if (!result.success) {
    const text = result.error.issues.map(describeIssue).join('\n');
    throw new ConfigError(`Invalid configuration in ${source}:\n${text}`);
  }
  return result.data;
}
