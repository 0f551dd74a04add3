/** What a message says, as Python's email package (a parser nobody here wrote) decodes it */
import assert from 'node:assert/strict';
import { python } from './clients.js';

const DECODE_PARTS = `
import email, sys, json, hashlib
from email import policy
m = email.message_from_binary_file(sys.stdin.buffer, policy=policy.compat32)
parts = []
for p in m.walk():
    if p.is_multipart(): continue
    data = p.get_payload(decode=True) or b''
    parts.append({'type': p.get_content_type(), 'bytes': len(data), 'sha256': hashlib.sha256(data).hexdigest()})
print(json.dumps({'parts': parts, 'headers': [[k, v] for k, v in m.items()]}))
`;

export interface DecodedMessage {
  /** Every leaf part: its type and its decoded content's length and hash */
  parts: { type: string; bytes: number; sha256: string }[];
  /** The top-level header fields as Python sees them */
  headers: [string, string][];
}

export async function decodeMessage(raw: Buffer): Promise<DecodedMessage> {
  const result = await python(DECODE_PARTS, [], raw);
  assert.equal(result.code, 0, result.stderr);
  return JSON.parse(result.stdout) as DecodedMessage;
}

/** The longest line in octets (without its CRLF), and whether any NUL or bare CR is left */
export function lineTrouble(raw: Buffer): { longest: number; nul: boolean; bareCr: boolean } {
  let longest = 0;
  let start = 0;
  for (let lf = raw.indexOf(0x0a); lf >= 0; lf = raw.indexOf(0x0a, start)) {
    longest = Math.max(longest, lf - start - (raw[lf - 1] === 0x0d ? 1 : 0));
    start = lf + 1;
  }
  longest = Math.max(longest, raw.length - start);
  return { longest, nul: raw.includes(0), bareCr: /\r(?!\n)/.test(raw.toString('latin1')) };
}
