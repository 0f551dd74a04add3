/**
 * Long lines, NUL and bare CR made safe for a strict upstream, content kept:
 * what comes out has no line over 998 octets, and Python's email package
 * decodes every part of it to the same bytes as the original. Valid mail
 * passes byte for byte.
 */
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import { test } from 'node:test';
import fc from 'fast-check';
import { LineFixer, lineFixPlan, MAX_LINE } from '../../src/deliver/line-safety.js';
import { decodeMessage, lineTrouble } from '../support/mime.js';

/** The message in chunks of `chunk` bytes (so lines and CRLFs straddle chunks) */
const opener =
  (raw: Buffer, chunk = 7_001) =>
  async () =>
    Readable.from(
      Array.from({ length: Math.ceil(raw.length / chunk) }, (_, i) =>
        raw.subarray(i * chunk, (i + 1) * chunk),
      ),
    );

async function makeSafe(raw: Buffer, chunk?: number): Promise<Buffer> {
  const open = opener(raw, chunk);
  const plan = await lineFixPlan(open);
  return plan ? buffer((await open()).pipe(new LineFixer(plan))) : raw;
}

const crlf = (...lines: string[]) => Buffer.from(lines.map((l) => `${l}\r\n`).join(''), 'latin1');

function assertSafe(raw: Buffer): void {
  const trouble = lineTrouble(raw);
  assert.ok(trouble.longest <= MAX_LINE, `a line of ${trouble.longest} octets`);
  assert.equal(trouble.nul, false, 'a NUL is left');
  assert.equal(trouble.bareCr, false, 'a bare CR is left');
}

async function assertSameContent(before: Buffer, after: Buffer): Promise<void> {
  const [a, b] = await Promise.all([decodeMessage(before), decodeMessage(after)]);
  assert.deepEqual(b.parts, a.parts);
}

test('valid mail passes byte for byte (a DKIM signature on it survives)', async () => {
  const raw = crlf(
    'DKIM-Signature: v=1; a=rsa-sha256; d=example.com; s=s1; h=from:subject;',
    '\tbh=abc; b=def',
    'From: a@example.com',
    'Subject: fine',
    'MIME-Version: 1.0',
    'Content-Type: multipart/mixed; boundary="b1"',
    '',
    'preamble',
    '--b1',
    'Content-Type: text/plain; charset=utf-8',
    'Content-Transfer-Encoding: 8bit',
    '',
    `caf\xc3\xa9 ${'x'.repeat(990)}`,
    '--b1',
    'Content-Type: application/octet-stream',
    'Content-Transfer-Encoding: base64',
    '',
    'AAECAwQFBgcICQ==',
    '--b1--',
  );
  assert.equal(await lineFixPlan(opener(raw)), undefined);
  assert.ok((await makeSafe(raw)).equals(raw));
});

test('a plain message with a 5 MB line and NUL bytes is re-encoded quoted-printable and decodes back to the same', async () => {
  const line = Buffer.alloc(5 * 1024 * 1024, 'abc def\0=\xe9 ');
  const raw = Buffer.concat([
    crlf('From: a@example.com', 'Subject: big', ''),
    line,
    Buffer.from('\r\nlast line \r\n'),
  ]);
  const safe = await makeSafe(raw, 65_536);
  assertSafe(safe);
  const head = safe.subarray(0, safe.indexOf('\r\n\r\n') + 2).toString('latin1');
  assert.equal(
    head,
    'From: a@example.com\r\nSubject: big\r\nMIME-Version: 1.0\r\nContent-Transfer-Encoding: quoted-printable\r\n',
  );
  await assertSameContent(raw, safe);
});

test('in a multipart only the part that needs it changes: text re-encoded, base64 split, quoted-printable soft-broken', async () => {
  const text = `${'word '.repeat(400)}\0tail`;
  const raw = crlf(
    'From: a@example.com',
    'MIME-Version: 1.0',
    'Content-Type: multipart/mixed; boundary=outer',
    '',
    '--outer',
    'Content-Type: multipart/alternative; boundary="inner"',
    '',
    '--inner',
    'Content-Type: text/plain; charset=iso-8859-1',
    'Content-Transfer-Encoding: 8bit',
    '',
    text,
    'a bare\rCR',
    '--inner',
    'Content-Type: text/html',
    'Content-Transfer-Encoding: quoted-printable',
    '',
    `<p>${'caf=E9 '.repeat(300)}</p>`,
    '--inner--',
    '--outer',
    'Content-Type: image/png',
    'Content-Transfer-Encoding: base64',
    '',
    Buffer.alloc(3000, 'png\0bytes').toString('base64'),
    '--outer',
    'Content-Type: text/plain',
    '',
    'untouched',
    '--outer--',
  );
  const safe = await makeSafe(raw, 100);
  assertSafe(safe);
  const out = safe.toString('latin1');
  assert.ok(out.includes('\r\na bare=0DCR\r\n'), 'the bare CR is kept as data');
  // Python reads the original's bare CR as a line break; compare the rest
  await assertSameContent(
    Buffer.from(raw.toString('latin1').replace('bare\rCR', 'bare\nCR'), 'latin1'),
    Buffer.from(out.replace('bare=0DCR', 'bare=0ACR'), 'latin1'),
  );
  assert.match(
    out,
    /Content-Type: text\/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n/,
  );
  assert.ok(!/Content-Transfer-Encoding: 8bit/.test(out), 'the old encoding field is gone');
  assert.ok(
    out.includes('\r\nContent-Type: text/plain\r\n\r\nuntouched\r\n--outer--\r\n'),
    'a part that was fine is left as it was',
  );
  assert.equal((out.match(/MIME-Version/g) ?? []).length, 1);
});

test('long header lines are folded at white space, or broken with a folding space; NUL and bare CR become spaces', async () => {
  const subject = Array.from({ length: 300 }, (_, i) => `w${i}`).join(' ');
  const token = 't'.repeat(2500);
  const raw = crlf(
    'From: a@example.com',
    `Subject: ${subject}`,
    `X-Token: ${token}`,
    'X-Inj: a\rBcc: x@evil.test',
    'X-Nul: a\0b',
    '',
    'body',
  );
  const safe = await makeSafe(raw);
  assertSafe(safe);
  const decoded = await decodeMessage(safe);
  const field = (name: string) =>
    decoded.headers.find(([key]) => key === name)?.[1].replace(/\r?\n/g, '');
  assert.equal(field('Subject'), subject, 'folding at white space keeps the value');
  assert.equal(field('X-Token')?.replace(/ /g, ''), token, 'only folding spaces were added');
  assert.equal(field('X-Inj'), 'a Bcc: x@evil.test');
  assert.equal(field('Bcc'), undefined, 'no new field');
  assert.equal(field('X-Nul'), 'a b');
  assert.ok(safe.toString('latin1').endsWith('\r\n\r\nbody\r\n'));
});

test('many small parts: exactly the ones that need it are re-encoded', async () => {
  const parts = Array.from({ length: 5_000 }, (_, i) => [
    '--b',
    'Content-Type: text/plain',
    '',
    i % 2 ? `odd ${i}\0` : `even ${i}`,
  ]).flat();
  const raw = crlf(
    'From: a@example.com',
    'MIME-Version: 1.0',
    'Content-Type: multipart/mixed; boundary=b',
    '',
    ...parts,
    '--b--',
  );
  const safe = await makeSafe(raw);
  assertSafe(safe);
  await assertSameContent(raw, safe);
  assert.equal((safe.toString('latin1').match(/quoted-printable/g) ?? []).length, 2_500);
});

/** Quoted-printable decoding, written here from RFC 2045 (not the encoder's code) */
const decodeQuotedPrintable = (text: string): string =>
  text
    .replace(/=\r\n/g, '')
    .replace(/=([0-9A-F]{2})/g, (_, hex: string) => String.fromCharCode(parseInt(hex, 16)));

test('any plain body, in any chunking: the result is safe and decodes to the same bytes', async () => {
  const shortLine = fc
    .uint8Array({ maxLength: 2_500 })
    .map((bytes) => Buffer.from(bytes.filter((b) => b !== 0x0a)).toString('latin1'));
  // Longer than a line piece (64 KB), so the line is fixed piece by piece; ending in white space or CR
  const pieceLine = fc
    .tuple(
      fc.integer({ min: 65_000, max: 140_000 }),
      fc.constantFrom(' ', 'a', '\0', '=', '\xff'),
      fc.constantFrom(' ', '\t', '\r', 'z'),
    )
    .map(([length, fill, end]) => fill.repeat(length) + end);
  const line = fc.oneof({ arbitrary: shortLine, weight: 9 }, { arbitrary: pieceLine, weight: 1 });
  await fc.assert(
    fc.asyncProperty(
      fc.array(line, { minLength: 1, maxLength: 6 }),
      fc.integer({ min: 7, max: 70_000 }),
      async (lines, chunk) => {
        const body = lines.map((l) => `${l}\r\n`).join('');
        const raw = Buffer.from(`Subject: p\r\n\r\n${body}`, 'latin1');
        const safe = await makeSafe(raw, chunk);
        assertSafe(safe);
        const text = safe.toString('latin1');
        const split = text.indexOf('\r\n\r\n') + 4;
        const encoded = /quoted-printable/.test(text.slice(0, split));
        assert.equal(encoded ? decodeQuotedPrintable(text.slice(split)) : text.slice(split), body);
      },
    ),
    { numRuns: 60 },
  );
});
