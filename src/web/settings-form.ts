/**
 * The settings form <-> config keys. One table says which field edits which
 * key and how its text is read; validation is the config schema itself, and
 * its complaints are mapped back to the field they are about. A field the
 * submitted form does not carry is left alone, so a partial form (or an older
 * page) never resets settings it did not show.
 */
import type { Config } from '../config/schema.js';
import { configSchema } from '../config/schema.js';
import { deepMerge, patchAt, valueAt, type JsonObject } from '../config/merge.js';
import { prototypeKeyProblem } from '../config/validate.js';
import { issueSentence } from '../config/issue-text.js';
import { providerPacing, upstreamProvider } from '../oauth/providers.js';

type ValueKind = 'text' | 'number' | 'megabytes' | 'lines' | 'words' | 'checkbox';

interface FieldBase {
  name: string;
  key: readonly string[];
}

/** A secret is write-only: never shown; empty keeps the stored one; its `clear` checkbox removes it */
export type FieldSpec =
  | (FieldBase & { kind: ValueKind })
  | (FieldBase & { kind: 'secret'; clear: string });

export const FIELDS: readonly FieldSpec[] = [
  { name: 'mode', key: ['delivery', 'mode'], kind: 'text' },
  { name: 'host', key: ['delivery', 'smarthost', 'host'], kind: 'text' },
  { name: 'port', key: ['delivery', 'smarthost', 'port'], kind: 'number' },
  { name: 'security', key: ['delivery', 'smarthost', 'security'], kind: 'text' },
  { name: 'auth', key: ['delivery', 'smarthost', 'auth'], kind: 'text' },
  { name: 'user', key: ['delivery', 'smarthost', 'user'], kind: 'text' },
  {
    name: 'password',
    key: ['delivery', 'smarthost', 'password'],
    kind: 'secret',
    clear: 'clearPassword',
  },
  { name: 'verify', key: ['delivery', 'tls', 'verify'], kind: 'checkbox' },
  { name: 'pacingPerMinute', key: ['delivery', 'pacing', 'messagesPerMinute'], kind: 'number' },
  { name: 'pacingPerDay', key: ['delivery', 'pacing', 'recipientsPerDay'], kind: 'number' },
  { name: 'oauthProvider', key: ['delivery', 'oauth2', 'provider'], kind: 'text' },
  { name: 'oauthFlow', key: ['delivery', 'oauth2', 'flow'], kind: 'text' },
  { name: 'oauthTenant', key: ['delivery', 'oauth2', 'tenant'], kind: 'text' },
  { name: 'oauthClientId', key: ['delivery', 'oauth2', 'clientId'], kind: 'text' },
  {
    name: 'oauthClientSecret',
    key: ['delivery', 'oauth2', 'clientSecret'],
    kind: 'secret',
    clear: 'clearOauthClientSecret',
  },
  { name: 'graphTenant', key: ['delivery', 'graph', 'tenant'], kind: 'text' },
  { name: 'graphClientId', key: ['delivery', 'graph', 'clientId'], kind: 'text' },
  {
    name: 'graphClientSecret',
    key: ['delivery', 'graph', 'clientSecret'],
    kind: 'secret',
    clear: 'clearGraphClientSecret',
  },
  { name: 'graphSender', key: ['delivery', 'graph', 'sender'], kind: 'text' },
  { name: 'graphMailbox', key: ['delivery', 'graph', 'mailbox'], kind: 'text' },
  { name: 'rewriteEnvelopeFrom', key: ['delivery', 'rewrite', 'envelopeFrom'], kind: 'text' },
  { name: 'rewriteHeaderFrom', key: ['delivery', 'rewrite', 'headerFrom'], kind: 'text' },
  { name: 'rewriteUseDeviceName', key: ['delivery', 'rewrite', 'useDeviceName'], kind: 'checkbox' },
  { name: 'dkimEnabled', key: ['delivery', 'dkim', 'enabled'], kind: 'checkbox' },
  { name: 'dkimDomain', key: ['delivery', 'dkim', 'domain'], kind: 'text' },
  { name: 'dkimSelector', key: ['delivery', 'dkim', 'selector'], kind: 'text' },
  { name: 'allowNetworks', key: ['smtp', 'allowNetworks'], kind: 'lines' },
  { name: 'localDomains', key: ['mailbox', 'localDomains'], kind: 'lines' },
  { name: 'maxMessageSize', key: ['smtp', 'maxMessageSize'], kind: 'megabytes' },
  { name: 'tlsStarttls', key: ['smtp', 'tls', 'starttls'], kind: 'checkbox' },
  { name: 'tlsPort', key: ['smtp', 'tls', 'port'], kind: 'number' },
  { name: 'tlsProfile', key: ['smtp', 'tls', 'profile'], kind: 'text' },
  { name: 'retryDelays', key: ['delivery', 'retry', 'delays'], kind: 'words' },
  { name: 'maxAge', key: ['delivery', 'retry', 'maxAge'], kind: 'text' },
  { name: 'upstreamFailingFor', key: ['alerts', 'upstreamFailingFor'], kind: 'text' },
  { name: 'queueThreshold', key: ['alerts', 'queueThreshold'], kind: 'number' },
  { name: 'dailyCapPercent', key: ['alerts', 'dailyCapPercent'], kind: 'number' },
  { name: 'webhook', key: ['alerts', 'webhook'], kind: 'text' },
  { name: 'digestTo', key: ['alerts', 'digest', 'to'], kind: 'text' },
];

type SecretSpec = Extract<FieldSpec, { kind: 'secret' }>;
const SECRETS = FIELDS.filter((spec): spec is SecretSpec => spec.kind === 'secret');

/** Per secret field: its "remove" checkbox, and whether a value is stored (all the page may know of it) */
export function secretStates(config: Config): Record<string, { clear: string; stored: boolean }> {
  return Object.fromEntries(
    SECRETS.map((spec) => [
      spec.name,
      { clear: spec.clear, stored: valueAt(config, spec.key) !== '' },
    ]),
  );
}

/** The hidden field listing the checkboxes a page showed: an unticked box is absent from a posted form */
export const CHECKBOXES_FIELD = '_checkboxes';
/** The hidden field naming the config file's revision the page was made from */
export const REVISION_FIELD = '_revision';

const MB = 1_048_576;

/** What the form shows: every field as text; secrets never */
export type FormValues = Record<string, string>;
export type FieldErrors = Record<string, string>;

export function formValues(config: Config): FormValues {
  const values: FormValues = {};
  for (const spec of FIELDS) {
    const value = valueAt(config, spec.key);
    values[spec.name] =
      spec.kind === 'secret'
        ? ''
        : spec.kind === 'checkbox'
          ? value
            ? 'on'
            : ''
          : spec.kind === 'megabytes'
            ? String(Math.round(((value as number) / MB) * 10) / 10)
            : spec.kind === 'lines'
              ? (value as string[]).join('\n')
              : spec.kind === 'words'
                ? (value as string[]).join(', ')
                : String(value);
  }
  return values;
}

/** The fields a posted form carries: given ones as text, listed-but-unticked checkboxes as "" */
export function postedForm(body: Record<string, unknown>): FormValues {
  const form: FormValues = {};
  const shown = typeof body[CHECKBOXES_FIELD] === 'string' ? body[CHECKBOXES_FIELD].split(',') : [];
  for (const spec of FIELDS) {
    const value = body[spec.name];
    if (typeof value === 'string') form[spec.name] = value;
    else if (spec.kind === 'checkbox' && shown.includes(spec.name)) form[spec.name] = '';
    if (spec.kind === 'secret' && body[spec.clear] === 'on') form[spec.clear] = 'on';
  }
  return form;
}

function parseField(kind: ValueKind, text: string): unknown {
  switch (kind) {
    case 'number':
      return text.trim() === '' ? Number.NaN : Number(text);
    case 'megabytes':
      return Math.round(Number(text) * MB);
    case 'lines':
      return text
        .split(/\r?\n/)
        .map((line) => line.trim())
        .filter(Boolean);
    case 'words':
      return text.split(/[\s,]+/).filter(Boolean);
    case 'checkbox':
      return text === 'on';
    case 'text':
      return text.trim();
  }
}

/** The value a field's text means, or undefined when the field leaves its key alone */
function fieldValue(spec: FieldSpec, form: FormValues): unknown {
  const text = form[spec.name];
  if (spec.kind !== 'secret') return text === undefined ? undefined : parseField(spec.kind, text);
  if (form[spec.clear] === 'on') return '';
  return text ? text : undefined;
}

/** The patch a submitted form means: absent fields and empty secrets keep what is stored */
export function formPatch(form: FormValues): JsonObject {
  let patch: JsonObject = {};
  for (const spec of FIELDS) {
    const value = fieldValue(spec, form);
    if (value !== undefined) patch = deepMerge(patch, patchAt(spec.key, value)) as JsonObject;
  }
  return patch;
}

/**
 * Fills in the provider's published sending limits when a change picks
 * another provider (Microsoft 365, Gmail) and leaves the upstream without
 * limits of its own: limits an admin set, or set in the same change, stay.
 */
export function withProviderPacing(config: Config, patch: JsonObject): JsonObject {
  const parsed = configSchema.safeParse(deepMerge(config, patch));
  // An invalid change is refused as a whole later, with its reasons
  if (!parsed.success) return patch;
  const next = parsed.data;
  const preset = providerPacing(next);
  const unlimited =
    next.delivery.pacing.messagesPerMinute === 0 && next.delivery.pacing.recipientsPerDay === 0;
  if (!preset || !unlimited || upstreamProvider(next) === upstreamProvider(config)) return patch;
  return deepMerge(patch, patchAt(['delivery', 'pacing'], { ...preset })) as JsonObject;
}

/**
 * Flags the page and the API may turn off but never on: opening the relay to
 * the world takes someone who can edit the config file on the box, not a
 * stolen session or an API token
 */
const FILE_ONLY_FLAGS: readonly (readonly string[])[] = [['smtp', 'allowWideNetworks']];

/** Why `patch` may not be applied at all, whatever its other values */
function refusal(config: Config, patch: JsonObject): string | undefined {
  const turnedOn = FILE_ONLY_FLAGS.find(
    (key) => valueAt(patch, key) === true && valueAt(config, key) !== true,
  );
  return turnedOn
    ? `Config key "${turnedOn.join('.')}" can be turned on only in the config file`
    : prototypeKeyProblem(patch);
}

/** Field name -> what is wrong, checked with the config schema over the current config */
export function validatePatch(
  config: Config,
  patch: JsonObject,
): { errors: FieldErrors; other: string[] } {
  const errors: FieldErrors = {};
  const refused = refusal(config, patch);
  if (refused) return { errors, other: [refused] };
  const result = configSchema.safeParse(deepMerge(config, patch));
  const other: string[] = [];
  if (result.success) return { errors, other };
  for (const issue of result.error.issues) {
    const path = issue.path.map(String);
    const spec = FIELDS.find((f) => f.key.every((part, i) => path[i] === part));
    const index = spec && path.length > spec.key.length ? Number(path[spec.key.length]) : undefined;
    const sentence = issueSentence(issue);
    const text =
      index !== undefined && Number.isInteger(index) ? `Entry ${index + 1}: ${sentence}` : sentence;
    if (spec) errors[spec.name] ??= text;
    else other.push(`${path.join('.')}: ${sentence}`);
  }
  return { errors, other };
}
