/** Password hashing with scrypt; the stored form names its parameters so they can change later */
import { randomBytes, scrypt, timingSafeEqual, type ScryptOptions } from 'node:crypto';

const PARAMS = { N: 16384, r: 8, p: 1 } as const;
const KEY_LENGTH = 32;

function derive(password: string, salt: Buffer, options: ScryptOptions): Promise<Buffer> {
  return new Promise((resolve, reject) =>
    scrypt(
      password.normalize('NFC'),
      salt,
      KEY_LENGTH,
      { ...options, maxmem: 64 * 1024 * 1024 },
      (err, key) => (err ? reject(err) : resolve(key)),
    ),
  );
}

export async function hashPassword(password: string): Promise<string> {
  const salt = randomBytes(16);
  const key = await derive(password, salt, PARAMS);
  return `scrypt$${PARAMS.N}$${PARAMS.r}$${PARAMS.p}$${salt.toString('base64')}$${key.toString('base64')}`;
}

export async function verifyPassword(password: string, stored: string): Promise<boolean> {
  const [scheme, n, r, p, salt, hash] = stored.split('$');
  if (scheme !== 'scrypt' || !salt || !hash) return false;
  const expected = Buffer.from(hash, 'base64');
  const key = await derive(password, Buffer.from(salt, 'base64'), {
    N: Number(n),
    r: Number(r),
    p: Number(p),
  });
  return key.length === expected.length && timingSafeEqual(key, expected);
}

/**
 * A stored hash that no password matches (its key is random bytes, not derived from anything).
 * Checking a login for a name that does not exist against it costs what a real check costs,
 * so the time of the answer does not tell which names exist
 */
const NO_SUCH_USER =
  'scrypt$16384$8$1$Z2hvc3Qtc2FsdC1lZGdlcg==$2P4UxK5bVvrvYk0q3b8J0m2xQ0c5h9lq0p0JmCqf9s0=';

/** Spends the time of a real check on a login that cannot succeed; always false */
export async function verifyNoSuchUser(password: string): Promise<false> {
  await verifyPassword(password, NO_SUCH_USER);
  return false;
}

/** Reject passwords nobody should use on a box on the LAN */
export function passwordProblem(password: string): string | null {
  if (password.length < 8) return 'Password must be at least 8 characters';
  if (password.length > 1024) return 'Password must be at most 1024 characters';
  return null;
}

/** Compares two secrets in constant time, so the time taken tells an attacker nothing */
export function sameSecret(a: string, b: string): boolean {
  const left = Buffer.from(a);
  const right = Buffer.from(b);
  return left.length === right.length && timingSafeEqual(left, right);
}
