/** Sender alignment rules (pure) and the streaming header editor */
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { text } from 'node:stream/consumers';
import { describe, test } from 'node:test';
import { resolveConfig } from '../../src/config/validate.js';
import { HeaderSectionEditor, splitFields, joinFields } from '../../src/deliver/header-section.js';
import {
  displayPhrase,
  rewriteEnvelopeFrom,
  rewriteHeaders,
  rewritePlan,
  type RewritePlan,
} from '../../src/deliver/rewrite.js';

const config = resolveConfig(
  {
    smtp: {
      devices: { '10.0.0.5': { rewriteFrom: 'mfp@contoso.com' }, '10.0.0.6': { rewriteFrom: '' } },
    },
    delivery: {
      rewrite: {
        envelopeFrom: 'relay@contoso.com',
        headerFrom: 'scanner@contoso.com',
        useDeviceName: true,
      },
      domains: {
        'partner.example': { route: 'smarthost', rewrite: { headerFrom: 'partners@contoso.com' } },
        'plain.example': { route: 'smarthost', rewrite: { envelopeFrom: '', headerFrom: '' } },
      },
    },
  },
  'test',
);
const client = (address: string) => ({ address, helo: 'MFP-3F' });

describe('rewritePlan: device > per-domain > global', () => {
  test('global for an ordinary device and domain; HELO as display name without an inventory name', () => {
    assert.deepEqual(rewritePlan(config, 'example.com', { client: client('10.0.0.9') }), {
      envelopeFrom: 'relay@contoso.com',
      headerFrom: 'scanner@contoso.com',
      displayName: 'MFP-3F',
    });
  });
  test('the inventory name wins over HELO', () => {
    assert.equal(
      rewritePlan(config, 'example.com', {
        client: client('10.0.0.9'),
        deviceName: '3rd floor MFP',
      }).displayName,
      '3rd floor MFP',
    );
  });
  test('a domain overrides field by field; "" turns a field off', () => {
    assert.deepEqual(rewritePlan(config, 'PARTNER.example', { client: client('10.0.0.9') }), {
      envelopeFrom: 'relay@contoso.com',
      headerFrom: 'partners@contoso.com',
      displayName: 'MFP-3F',
    });
    assert.deepEqual(rewritePlan(config, 'plain.example', { client: client('10.0.0.9') }), {
      envelopeFrom: '',
      headerFrom: '',
      displayName: '',
    });
  });
  test('a device overrides both, even for an overridden domain; "" turns rewriting off for it', () => {
    assert.deepEqual(rewritePlan(config, 'partner.example', { client: client('10.0.0.5') }), {
      envelopeFrom: 'mfp@contoso.com',
      headerFrom: 'mfp@contoso.com',
      displayName: 'MFP-3F',
    });
    assert.deepEqual(
      rewritePlan(config, 'example.com', { client: client('::ffff:10.0.0.5') }).headerFrom,
      'mfp@contoso.com',
      'IPv4-mapped address',
    );
    assert.deepEqual(rewritePlan(config, 'example.com', { client: client('10.0.0.6') }), {
      envelopeFrom: '',
      headerFrom: '',
      displayName: '',
    });
  });
  test('off by default', () => {
    assert.deepEqual(
      rewritePlan(resolveConfig({}, 'test'), 'example.com', { client: client('10.0.0.9') }),
      { envelopeFrom: '', headerFrom: '', displayName: '' },
    );
  });
  test('the null sender of a bounce is never rewritten', () => {
    const plan: RewritePlan = {
      envelopeFrom: 'relay@contoso.com',
      headerFrom: '',
      displayName: '',
    };
    assert.equal(rewriteEnvelopeFrom('', plan), '');
    assert.equal(rewriteEnvelopeFrom('printer@lan', plan), 'relay@contoso.com');
  });
});

describe('rewriteHeaders', () => {
  const plan: RewritePlan = {
    envelopeFrom: '',
    headerFrom: 'scanner@contoso.com',
    displayName: '',
  };
  const head =
    'Received: from x\r\n\tby y\r\nFrom: "Printer, 3rd" <printer@office.lan>\r\nSubject: Scan\r\n';

  test('From replaced in place, the original kept in X-Original-From and Reply-To, the rest untouched', () => {
    assert.equal(
      rewriteHeaders(head, plan, 'printer@office.lan'),
      'Received: from x\r\n\tby y\r\nFrom: "Printer, 3rd" <scanner@contoso.com>\r\nX-Original-From: "Printer, 3rd" <printer@office.lan>\r\nReply-To: "Printer, 3rd" <printer@office.lan>\r\nSubject: Scan\r\n',
    );
  });
  test('an existing Reply-To is kept; a folded From is carried over as written', () => {
    const folded = 'From: Printer\r\n <printer@office.lan>\r\nReply-To: helpdesk@contoso.com\r\n';
    const out = rewriteHeaders(folded, { ...plan, displayName: 'Büro Drucker' }, '');
    assert.equal(
      out,
      'From: =?UTF-8?Q?B=C3=BCro_Drucker?= <scanner@contoso.com>\r\nX-Original-From: Printer\r\n <printer@office.lan>\r\nReply-To: helpdesk@contoso.com\r\n',
    );
  });
  test('no From at all: added, with the envelope sender as Reply-To', () => {
    assert.equal(
      rewriteHeaders('Subject: x\r\n', plan, 'ups@lan.local'),
      'Subject: x\r\nFrom: <scanner@contoso.com>\r\nReply-To: <ups@lan.local>\r\n',
    );
  });
  test('already the verified address: left alone', () => {
    const aligned = 'From: Scanner <scanner@contoso.com>\r\n';
    assert.equal(rewriteHeaders(aligned, plan, ''), aligned);
  });
  test('display names: atoms, quoted, encoded', () => {
    assert.equal(displayPhrase('MFP 3F'), 'MFP 3F');
    assert.equal(displayPhrase('Room "A", 2.01'), '"Room \\"A\\", 2.01"');
    assert.equal(displayPhrase('Caf\u00e9'), '=?UTF-8?Q?Caf=C3=A9?=');
    assert.equal(
      displayPhrase('evil\r\nBcc: x@y'),
      '"evil Bcc: x@y"',
      'no header injection through a device name',
    );
  });
  test('splitFields/joinFields keep the exact bytes', () => {
    assert.equal(joinFields(splitFields(head)), head);
  });
});

describe('HeaderSectionEditor (streaming)', () => {
  const message = 'From: a@b.lan\r\nSubject: s\r\n\r\nbody line\r\n\r\nFrom: not a header\r\n';
  const edit = (headers: string) => headers.replace('a@b.lan', 'x@contoso.com');

  test('one byte at a time: only the header section is edited', async () => {
    const bytes = [...Buffer.from(message)].map((b) => Buffer.from([b]));
    const out = await text(Readable.from(bytes).pipe(new HeaderSectionEditor(edit)));
    assert.equal(out, message.replace('a@b.lan', 'x@contoso.com'));
  });
  test('a message that is all header is edited too', async () => {
    assert.equal(
      await text(Readable.from([Buffer.from('From: a@b.lan')]).pipe(new HeaderSectionEditor(edit))),
      'From: x@contoso.com\r\n',
    );
  });
  test('a "header section" over 256 KB is passed on unedited', async () => {
    const huge = `From: a@b.lan\r\nX-Long: ${'y'.repeat(300 * 1024)}`;
    assert.equal(
      await text(Readable.from([Buffer.from(huge)]).pipe(new HeaderSectionEditor(edit))),
      huge,
    );
  });
});
