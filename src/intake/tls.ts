/**
 * Intake TLS profiles (pure). Off by default: many old devices break when
 * STARTTLS is offered. "legacy" lets TLS 1.0/1.1 and the old ciphers in, which
 * OpenSSL 3 refuses unless the security level is lowered to 0.
 */
import type { Config } from '../config/schema.js';

export type TlsProfile = Config['smtp']['tls']['profile'];

export interface TlsServerOptions {
  key: string;
  cert: string;
  minVersion: 'TLSv1' | 'TLSv1.2';
  ciphers?: string;
  honorCipherOrder: boolean;
}

export function tlsServerOptions(
  profile: TlsProfile,
  pair: { key: string; cert: string },
): TlsServerOptions {
  return profile === 'legacy'
    ? { ...pair, minVersion: 'TLSv1', ciphers: 'DEFAULT:@SECLEVEL=0', honorCipherOrder: true }
    : { ...pair, minVersion: 'TLSv1.2', honorCipherOrder: true };
}

export const wantsTls = (config: Config): boolean =>
  config.smtp.tls.starttls || config.smtp.tls.port > 0;
