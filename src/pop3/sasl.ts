/** SASL PLAIN (RFC 4616) as POP3 AUTH carries it (RFC 5034) */

export interface PlainCredentials {
  user: string;
  password: string;
}

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/** "[authzid] NUL authcid NUL passwd", base64; null when malformed or acting as someone else */
export function decodePlain(base64: string): PlainCredentials | null {
  if (!BASE64.test(base64)) return null;
  const parts = Buffer.from(base64, 'base64').toString('utf8').split('\0');
  if (parts.length !== 3) return null;
  const [authorize = '', user = '', password = ''] = parts;
  if (!user || !password) return null;
  // Logging in as one user to read another's mailbox is not something we offer
  if (authorize && authorize !== user) return null;
  return { user, password };
}
