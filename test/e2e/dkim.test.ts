/**
 * DKIM end to end: the relay makes its key on first use, signs mail whose
 * From is in the signing domain (after sender alignment), and the upstream's
 * copy verifies against the DNS record the relay would have us publish. The
 * verifier below is our own (RFC 6376 relaxed/relaxed), not the signer's code.
 */
import assert from 'node:assert/strict';
import { createHash, createPublicKey, verify } from 'node:crypto';
import { statSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { DkimKeys } from '../../src/deliver/dkim.js';
import { smtplibSend } from '../support/clients.js';
import { launchRelay, type RunningRelay } from '../support/relay.js';
import { startUpstream, viaSmarthost, type Upstream } from '../support/upstream.js';

/** Header fields as [name, full field text] in order, folding kept */
function fields(head: string): [string, string][] {
  return head
    .split(/\r\n(?![ \t])/)
    .filter(Boolean)
    .map((field) => [field.slice(0, field.indexOf(':')).trim().toLowerCase(), field]);
}

const relaxedHeader = (name: string, field: string): string =>
  `${name}:${field
    .slice(field.indexOf(':') + 1)
    .replace(/\r\n/g, '')
    .replace(/[ \t]+/g, ' ')
    .trim()}`;

function relaxedBody(body: string): string {
  const lines = body.split('\r\n').map((line) => line.replace(/[ \t]+/g, ' ').replace(/ $/, ''));
  while (lines.length && lines.at(-1) === '') lines.pop();
  return lines.length ? `${lines.join('\r\n')}\r\n` : '';
}

/** Verifies the first DKIM-Signature of a message with a "v=DKIM1; k=rsa; p=..." record */
function verifyDkim(raw: string, dnsRecord: string): { ok: boolean; tags: Map<string, string> } {
  const split = raw.indexOf('\r\n\r\n');
  const all = fields(raw.slice(0, split));
  const signature = all.find(([name]) => name === 'dkim-signature');
  assert.ok(signature, 'a DKIM-Signature header');
  const tagText = signature[1].slice(signature[1].indexOf(':') + 1).replace(/\s+/g, '');
  const tags = new Map(
    tagText
      .split(';')
      .filter(Boolean)
      .map((t) => [t.slice(0, t.indexOf('=')), t.slice(t.indexOf('=') + 1)] as [string, string]),
  );
  assert.equal(tags.get('c'), 'relaxed/relaxed');
  assert.equal(tags.get('a'), 'rsa-sha256');
  const bodyHash = createHash('sha256')
    .update(relaxedBody(raw.slice(split + 4)), 'latin1')
    .digest('base64');
  if (bodyHash !== tags.get('bh')) return { ok: false, tags };
  // h= names are taken bottom-up, each instance once (RFC 6376 section 5.4.2)
  const remaining = [...all];
  const signed: string[] = [];
  for (const name of (tags.get('h') ?? '').toLowerCase().split(':')) {
    const index = remaining.map(([n]) => n).lastIndexOf(name);
    if (index < 0) continue;
    signed.push(relaxedHeader(name, remaining[index]![1]));
    remaining.splice(index, 1);
  }
  const withoutB = relaxedHeader('dkim-signature', signature[1]).replace(/(;\s*b=)[^;]*$/, '$1');
  const data = `${signed.join('\r\n')}\r\n${withoutB}`;
  const p = /p=([^;]+)/.exec(dnsRecord)?.[1] ?? '';
  const key = createPublicKey({ key: Buffer.from(p, 'base64'), format: 'der', type: 'spki' });
  return {
    ok: verify(
      'RSA-SHA256',
      Buffer.from(data, 'latin1'),
      key,
      Buffer.from(tags.get('b') ?? '', 'base64'),
    ),
    tags,
  };
}

describe('DKIM signing of relayed mail', () => {
  let upstream: Upstream;
  let relay: RunningRelay;

  before(async () => {
    upstream = await startUpstream({ requireTls: true });
    relay = await launchRelay({
      config: viaSmarthost(upstream, {
        dkim: { enabled: true, domain: 'contoso.test', selector: 'relay1' },
        domains: {
          'aligned.test': { route: 'smarthost', rewrite: { headerFrom: 'scanner@contoso.test' } },
        },
      }),
    });
  });
  after(async () => {
    await relay.stop();
    await upstream.close();
  });

  const record = async () =>
    (await new DkimKeys(relay.dataDir).record('contoso.test', 'relay1')).value;

  test('a message From the domain is signed, and verifies against the published record', async () => {
    const body = `Line with trailing space   \r\n\tTabbed  line\r\n${'x'.repeat(998)}\r\n\r\n\r\n`;
    await smtplibSend(
      relay.smtpPort,
      'ups@contoso.test',
      ['ops@example.com'],
      `From: UPS <ups@contoso.test>\r\nTo: ops@example.com\r\nSubject:   On   battery\r\n\r\n${body}`,
    );
    const [message] = await upstream.waitFor(1);
    const raw = message?.raw.toString('latin1') ?? '';
    assert.match(raw, /^DKIM-Signature: /, 'the signature comes first');
    const result = verifyDkim(raw, await record());
    assert.equal(result.tags.get('d'), 'contoso.test');
    assert.equal(result.tags.get('s'), 'relay1');
    assert.ok(result.ok, 'the signature verifies');
    const keyFile = path.join(relay.dataDir, 'dkim', 'relay1.key');
    assert.equal(statSync(keyFile).mode & 0o777, 0o600);
  });

  test('the check fails for a changed message (the verifier is not a rubber stamp)', async () => {
    const raw = upstream.messages[0]?.raw.toString('latin1') ?? '';
    assert.equal(verifyDkim(raw.replace('On   battery', 'On battery!'), await record()).ok, false);
    assert.equal(verifyDkim(`${raw}tampered\r\n`, await record()).ok, false);
  });

  test('mail from another domain is not signed', async () => {
    await smtplibSend(
      relay.smtpPort,
      'printer@office.lan',
      ['ops@example.com'],
      'From: printer@office.lan\r\nSubject: scan\r\n\r\nscan\r\n',
    );
    const messages = await upstream.waitFor(2);
    assert.ok(!/^DKIM-Signature:/im.test(messages[1]?.raw.toString() ?? ''));
  });

  test('after sender alignment the rewritten From is signed (a 3 MB scan, streamed twice)', async () => {
    const scan =
      `${'JVBERi0xLjQKJcOkw7zDtsOfCjIgMCBvYmoKPDwvTGVuZ3RoIDMgMCBSL0Zp'.repeat(50)}\r\n`.repeat(
        1000,
      );
    await smtplibSend(
      relay.smtpPort,
      'mfp@office.lan',
      ['boss@aligned.test'],
      `From: MFP <mfp@office.lan>\r\nSubject: Scan\r\nMIME-Version: 1.0\r\nContent-Type: text/plain\r\n\r\n${scan}`,
    );
    const messages = await upstream.waitFor(3, 30_000);
    const raw = messages[2]?.raw.toString('latin1') ?? '';
    assert.match(raw, /^From: MFP <scanner@contoso\.test>\r\n/m);
    const result = verifyDkim(raw, await record());
    assert.ok(result.ok, 'the signature over the rewritten headers verifies');
    assert.match(
      result.tags.get('h') ?? '',
      /(^|:)reply-to(:|$)/i,
      'Reply-To (added by alignment) is signed',
    );
  });
});
