/**
 * The settings form <-> config keys. One table says which field edits which
 * key and how its text is read; validation is the config schema itself, and
 * its complaints are mapped back to the field they are about.
 */
import type { Config } from '../config/schema.js';
import { configSchema } from '../config/schema.js';
import { deepMerge, type JsonObject } from '../config/merge.js';

type Kind = 'text' | 'number' | 'megabytes' | 'lines' | 'words' | 'checkbox' | 'secret';

export interface FieldSpec {
  name: string;
  key: readonly string[];
  kind: Kind;
}

export const FIELDS: readonly FieldSpec[] = [
  { name: 'mode', key: ['delivery', 'mode'], kind: 'text' },
  { name: 'host', key: ['delivery', 'smarthost', 'host'], kind: 'text' },
  { name: 'port', key: ['delivery', 'smarthost', 'port'], kind: 'number' },
  { name: 'security', key: ['delivery', 'smarthost', 'security'], kind: 'text' },
  { name: 'user', key: ['delivery', 'smarthost', 'user'], kind: 'text' },
  { name: 'password', key: ['delivery', 'smarthost', 'password'], kind: 'secret' },
  { name: 'verify', key: ['delivery', 'tls', 'verify'], kind: 'checkbox' },
  { name: 'allowNetworks', key: ['smtp', 'allowNetworks'], kind: 'lines' },
  { name: 'localDomains', key: ['mailbox', 'localDomains'], kind: 'lines' },
  { name: 'maxMessageSize', key: ['smtp', 'maxMessageSize'], kind: 'megabytes' },
  { name: 'retryDelays', key: ['delivery', 'retry', 'delays'], kind: 'words' },
  { name: 'maxAge', key: ['delivery', 'retry', 'maxAge'], kind: 'text' },
  { name: 'upstreamFailingFor', key: ['alerts', 'upstreamFailingFor'], kind: 'text' },
  { name: 'queueThreshold', key: ['alerts', 'queueThreshold'], kind: 'number' },
  { name: 'webhook', key: ['alerts', 'webhook'], kind: 'text' },
  { name: 'digestTo', key: ['alerts', 'digest', 'to'], kind: 'text' },
];

const MB = 1_048_576;

/** What the form shows: every field as text; the password never */
export type FormValues = Record<string, string>;
export type FieldErrors = Record<string, string>;

function valueAt(config: unknown, key: readonly string[]): unknown {
  return key.reduce<unknown>((node, part) => (node as JsonObject | undefined)?.[part], config);
}

export function formValues(config: Config): FormValues {
  const values: FormValues = {};
  for (const spec of FIELDS) {
    const value = valueAt(config, spec.key);
    values[spec.name] =
      spec.kind === 'secret' ? '' :
      spec.kind === 'checkbox' ? (value ? 'on' : '') :
      spec.kind === 'megabytes' ? String(Math.round(((value as number) / MB) * 10) / 10) :
      spec.kind === 'lines' ? (value as string[]).join('\n') :
      spec.kind === 'words' ? (value as string[]).join(', ') :
      String(value);
  }
  return values;
}

function parseField(spec: FieldSpec, text: string): unknown {
  switch (spec.kind) {
    case 'number':
      return text.trim() === '' ? Number.NaN : Number(text);
    case 'megabytes':
      return Math.round(Number(text) * MB);
    case 'lines':
      return text.split(/\r?\n/).map((line) => line.trim()).filter(Boolean);
    case 'words':
      return text.split(/[\s,]+/).filter(Boolean);
    case 'checkbox':
      return text === 'on';
    default:
      return text.trim();
  }
}

/** The patch a submitted form means; an empty password field keeps the stored one */
export function formPatch(form: FormValues): JsonObject {
  const patch: JsonObject = {};
  for (const spec of FIELDS) {
    const text = form[spec.name] ?? '';
    if (spec.kind === 'secret' && text === '' && form.clearPassword !== 'on') continue;
    let node = patch;
    for (const part of spec.key.slice(0, -1)) node = (node[part] ??= {}) as JsonObject;
    node[spec.key.at(-1) as string] = spec.kind === 'secret' ? text : parseField(spec, text);
  }
  return patch;
}

/** Field name -> what is wrong, checked with the config schema over the current config */
export function validatePatch(config: Config, patch: JsonObject): { errors: FieldErrors; other: string[] } {
  const result = configSchema.safeParse(deepMerge(config, patch));
  const errors: FieldErrors = {};
  const other: string[] = [];
  if (result.success) return { errors, other };
  for (const issue of result.error.issues) {
    const path = issue.path.map(String);
    const spec = FIELDS.find((f) => f.key.every((part, i) => path[i] === part));
    const index = spec && path.length > spec.key.length ? Number(path[spec.key.length]) : undefined;
    const text = index !== undefined && Number.isInteger(index) ? `Entry ${index + 1}: ${issue.message}` : issue.message;
    if (spec) errors[spec.name] ??= text;
    else other.push(`${path.join('.')}: ${issue.message}`);
  }
  return { errors, other };
}
