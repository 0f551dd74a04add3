/**
 * TLS policy for MX delivery (pure): what the admin asked for per domain or
 * globally, raised by an MTA-STS policy in enforce mode, turned into the
 * settings of one SMTP connection. Here, not in deliver/, because the router
 * names a destination's policy too.
 */

/** How one SMTP connection does TLS: STARTTLS required, implicit TLS, none, or STARTTLS when offered */
export type TlsMode = 'starttls' | 'tls' | 'none' | 'opportunistic';

/**
 * none: never STARTTLS; may: STARTTLS when offered, certificate not checked
 * (RFC 7435 opportunistic security); encrypt: STARTTLS required, any
 * certificate; verify: STARTTLS required, certificate valid for the MX name.
 */
export type TlsPolicy = 'none' | 'may' | 'encrypt' | 'verify';

const STRENGTH: readonly TlsPolicy[] = ['none', 'may', 'encrypt', 'verify'];

/** The stricter of two policies */
export const stricter = (a: TlsPolicy, b: TlsPolicy): TlsPolicy =>
  STRENGTH.indexOf(a) >= STRENGTH.indexOf(b) ? a : b;

export interface TlsSettings {
  security: TlsMode;
  verify: boolean;
}

export function tlsSettings(policy: TlsPolicy): TlsSettings {
  switch (policy) {
    case 'none':
      return { security: 'none', verify: false };
    case 'may':
      return { security: 'opportunistic', verify: false };
    case 'encrypt':
      return { security: 'starttls', verify: false };
    case 'verify':
      return { security: 'starttls', verify: true };
  }
}
