/**
 * A stored secret belongs to the server it was given for. A change that
 * points it elsewhere (another smarthost host or port, another OAuth2 token
 * endpoint) forgets it unless the same change gives it again: whoever can
 * change settings (a page session, an API token) must not be able to have
 * the relay hand the company's password to a server of their choosing.
 */
import { deepMerge, patchAt, valueAt, type JsonObject } from './merge.js';
import type { Config } from './schema.js';

interface BoundSecret {
  secret: readonly string[];
  /** What the admin calls it */
  label: string;
  /** The keys that say where the secret is sent */
  destination: readonly (readonly string[])[];
}

const BOUND_SECRETS: readonly BoundSecret[] = [
  {
    secret: ['delivery', 'smarthost', 'password'],
    label: 'smarthost password',
    destination: [
      ['delivery', 'smarthost', 'host'],
      ['delivery', 'smarthost', 'port'],
    ],
  },
  {
    secret: ['delivery', 'oauth2', 'clientSecret'],
    label: 'OAuth2 client secret',
    destination: [
      ['delivery', 'oauth2', 'provider'],
      ['delivery', 'oauth2', 'tokenUrl'],
    ],
  },
  // The tokens it earns go to baseUrl: pointing that elsewhere would hand out the right to send as any mailbox
  {
    secret: ['delivery', 'graph', 'clientSecret'],
    label: 'Microsoft Graph client secret',
    destination: [
      ['delivery', 'graph', 'tenant'],
      ['delivery', 'graph', 'tokenUrl'],
      ['delivery', 'graph', 'baseUrl'],
    ],
  },
];

/** Host names differ only in case and surrounding blanks when they name the same server */
const comparable = (value: unknown): unknown =>
  typeof value === 'string' ? value.trim().toLowerCase() : value;

const moved = (current: Config, next: unknown, bound: BoundSecret): boolean =>
  bound.destination.some(
    (key) => comparable(valueAt(current, key)) !== comparable(valueAt(next, key)),
  );

export interface ForgottenSecret {
  key: string;
  label: string;
}

/** `patch`, plus the removal of every stored secret it points elsewhere without giving it again; `forgotten` names those */
export function forgetMovedSecrets(
  current: Config,
  patch: JsonObject,
): { patch: JsonObject; forgotten: ForgottenSecret[] } {
  const next = deepMerge(current, patch);
  const stale = BOUND_SECRETS.filter(
    (bound) =>
      valueAt(current, bound.secret) !== '' &&
      valueAt(patch, bound.secret) === undefined &&
      moved(current, next, bound),
  );
  return {
    patch: stale.reduce<JsonObject>(
      (result, bound) => deepMerge(result, patchAt(bound.secret, '')) as JsonObject,
      patch,
    ),
    forgotten: stale.map((bound) => ({ key: bound.secret.join('.'), label: bound.label })),
  };
}
