/**
 * Logging in to the upstream: AUTH PLAIN/LOGIN with a password, or XOAUTH2
 * with an access token. A token the upstream refuses (535, or the XOAUTH2
 * error challenge) is replaced by a fresh one and tried once more on the
 * same connection; a second refusal is the upstream's final word. Nothing
 * is sent on a connection without TLS: the settings refuse that combination,
 * and this is the last line should any path ever get past them.
 */
// nodemailer's client side of a session with the upstream (not smtp-server's, which intake uses for devices)
import type UpstreamConnection from 'nodemailer/lib/smtp-connection';
import type { AccessTokenSource } from '../oauth/client.js';

export type SmtpAuth =
  | { method: 'password'; user: string; pass: string }
  | { method: 'oauth2'; user: string; tokens: AccessTokenSource };

type Credentials = Parameters<UpstreamConnection['login']>[0];

function attempt(connection: UpstreamConnection, credentials: Credentials): Promise<void> {
  return new Promise<void>((resolve, reject) =>
    connection.login(credentials, (err) => (err ? reject(err) : resolve())),
  );
}

/**
 * nodemailer's XOAUTH2 hook: it asks again with isRetry after the server's
 * error challenge. Only the first refusal earns a fresh token; after that the
 * same token goes again, so the upstream's own 535 is what we report.
 */
function tokenProvider(
  auth: Extract<SmtpAuth, { method: 'oauth2' }>,
  first: string,
  forced: { value: boolean },
) {
  return {
    getToken(isRetry: boolean, callback: (err: Error | null, token?: string) => void) {
      if (!isRetry || forced.value) return callback(null, first);
      forced.value = true;
      auth.tokens.accessToken({ force: true }).then(
        (token) => callback(null, token),
        (err: Error) => callback(err),
      );
    },
    buildXOAuth2Token(accessToken: string) {
      return Buffer.from(
        `user=${auth.user}\x01auth=Bearer ${accessToken}\x01\x01`,
        'utf8',
      ).toString('base64');
    },
  };
}

async function loginOAuth2(
  connection: UpstreamConnection,
  auth: Extract<SmtpAuth, { method: 'oauth2' }>,
): Promise<void> {
  const forced = { value: false };
  const token = await auth.tokens.accessToken({ force: false });
  try {
    await attempt(connection, {
      user: auth.user,
      method: 'XOAUTH2',
      oauth2: tokenProvider(auth, token, forced),
    } as unknown as Credentials);
  } catch (err) {
    // A plain 535 (Microsoft's way) without the challenge: the token may be revoked or stale
    if (forced.value || (err as { responseCode?: number }).responseCode !== 535) throw err;
    const fresh = await auth.tokens.accessToken({ force: true });
    await attempt(connection, {
      user: auth.user,
      method: 'XOAUTH2',
      oauth2: tokenProvider(auth, fresh, { value: true }),
    } as unknown as Credentials);
  }
}

/** An ordinary authentication failure (deferred, never bounced) that says which setting to change */
const settingProblem = (message: string): Promise<never> =>
  Promise.reject(Object.assign(new Error(message), { code: 'EAUTH' }));

export function login(connection: UpstreamConnection, auth: SmtpAuth): Promise<void> {
  if (!connection.secure)
    return settingProblem(
      'Not sending the user name and password over a connection without TLS: set delivery.smarthost.security to "starttls" or "tls"',
    );
  if (auth.method === 'password' && auth.pass === '')
    return settingProblem(
      `No password is stored for the user "${auth.user}" (it is removed when the smarthost changes): enter it in the settings (delivery.smarthost.password)`,
    );
  return auth.method === 'password'
    ? attempt(connection, { user: auth.user, pass: auth.pass })
    : loginOAuth2(connection, auth);
}
