/**
 * MTA-STS (RFC 8461) records and policies (pure): the `_mta-sts` TXT record,
 * the policy file, and which MX host names a policy allows.
 */

export type StsMode = 'enforce' | 'testing' | 'none';

export interface StsPolicy {
  mode: StsMode;
  /** MX patterns: "mx.example.com" or "*.example.com" (one leftmost label) */
  mx: string[];
  maxAgeSeconds: number;
}

export type Parsed<T> = { ok: true; value: T } | { ok: false; error: string };

/** RFC 8461 section 3.2: max_age is at most 31557600 (one year) */
export const MAX_AGE_LIMIT = 31_557_600;
const ID = /^[A-Za-z0-9]{1,32}$/;

/**
 * The policy id from a domain's TXT records at `_mta-sts.<domain>`. Only
 * records starting with "v=STSv1" count; none, several, or one without a
 * valid id mean "no policy" (RFC 8461 section 3.1).
 */
export function parseStsRecord(records: readonly string[]): Parsed<{ id: string }> {
  const sts = records.filter((record) => /^v=STSv1\s*(;|$)/.test(record));
  if (sts.length !== 1)
    return {
      ok: false,
      error: sts.length ? `${sts.length} MTA-STS records, expected one` : 'No MTA-STS record',
    };
  const fields = new Map<string, string>();
  for (const field of (sts[0] ?? '').split(';')) {
    const eq = field.indexOf('=');
    if (eq > 0) fields.set(field.slice(0, eq).trim(), field.slice(eq + 1).trim());
  }
  const id = fields.get('id') ?? '';
  return ID.test(id)
    ? { ok: true, value: { id } }
    : { ok: false, error: `Bad MTA-STS record id "${id}"` };
}

/** The policy file: "key: value" lines, CRLF or LF; unknown keys are ignored (section 3.2) */
export function parseStsPolicy(text: string): Parsed<StsPolicy> {
  const values = new Map<string, string[]>();
  for (const line of text.split(/\r?\n/)) {
    const colon = line.indexOf(':');
    if (colon <= 0) continue;
    const key = line.slice(0, colon).trim();
    values.set(key, [...(values.get(key) ?? []), line.slice(colon + 1).trim()]);
  }
  const version = values.get('version')?.[0];
  if (version !== 'STSv1')
    return { ok: false, error: `Bad MTA-STS policy version "${version ?? ''}"` };
  const mode = values.get('mode')?.[0] ?? '';
  if (mode !== 'enforce' && mode !== 'testing' && mode !== 'none')
    return { ok: false, error: `Bad MTA-STS policy mode "${mode}"` };
  const maxAge = values.get('max_age')?.[0] ?? '';
  if (!/^\d{1,10}$/.test(maxAge))
    return { ok: false, error: `Bad MTA-STS policy max_age "${maxAge}"` };
  const mx = (values.get('mx') ?? []).map((pattern) => pattern.toLowerCase().replace(/\.$/, ''));
  if (mode !== 'none' && mx.length === 0) return { ok: false, error: 'MTA-STS policy lists no mx' };
  return { ok: true, value: { mode, mx, maxAgeSeconds: Math.min(Number(maxAge), MAX_AGE_LIMIT) } };
}

/** "*.example.com" matches exactly one more label on the left: a.example.com, not example.com nor a.b.example.com */
export function mxMatches(pattern: string, host: string): boolean {
  const name = host.toLowerCase().replace(/\.$/, '');
  if (!pattern.startsWith('*.')) return name === pattern;
  const dot = name.indexOf('.');
  return dot > 0 && name.slice(dot + 1) === pattern.slice(2);
}

export const policyAllows = (policy: StsPolicy, host: string): boolean =>
  policy.mx.some((pattern) => mxMatches(pattern, host));
