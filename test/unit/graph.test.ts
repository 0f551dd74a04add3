/** Microsoft Graph delivery, the pure parts: answers to outcomes, the MIME passes, headers and sender, settings */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { describe, test } from 'node:test';
import { forgetMovedSecrets } from '../../src/config/secrets.js';
import { resolveConfig } from '../../src/config/validate.js';
import { configSchema } from '../../src/config/schema.js';
import { graphOutcome } from '../../src/deliver/graph/graph-outcome.js';
import {
  base64Of,
  decodedPart,
  surveyParts,
  withoutParts,
} from '../../src/deliver/graph/mime-parts.js';
import { graphHeaders, senderMailbox } from '../../src/deliver/graph/sender-mailbox.js';
import { tokenRoles } from '../../src/deliver/graph/graph-check.js';
import { formPatch, formValues, secretStates } from '../../src/web/settings-form.js';

const context = {
  mailbox: 'scanner@contoso.com',
  tenant: 'contoso.com',
  clientId: 'app-1',
  step: 'sendMail',
};
const error = (code: string, message = 'text') => ({ error: { code, message } });

describe('graphOutcome', () => {
  test('throttling defers and passes Retry-After on', () => {
    const outcome = graphOutcome(
      { status: 429, retryAfterMs: 7000, body: error('ApplicationThrottled') },
      context,
    );
    assert.deepEqual(outcome.status === 'deferred' && [outcome.retryAfterMs, outcome.throttled], [
      7000,
      true,
    ]);
  });

  test('5xx defers', () => {
    assert.equal(
      graphOutcome({ status: 503, body: error('ServiceUnavailable') }, context).status,
      'deferred',
    );
  });

  test('a refused app is a setting to fix: deferred, naming Mail.Send, the mailbox and the consent link', () => {
    const outcome = graphOutcome(
      { status: 403, body: error('ErrorAccessDenied', 'Access is denied.') },
      context,
    );
    assert.equal(outcome.status, 'deferred');
    const text = outcome.status === 'deferred' ? outcome.reason : '';
    assert.match(text, /403 ErrorAccessDenied: Access is denied\./);
    assert.match(text, /application permission Mail\.Send/);
    assert.match(text, /scanner@contoso\.com/);
    assert.ok(
      text.includes('https://login.microsoftonline.com/contoso.com/adminconsent?client_id=app-1'),
    );
    const draft = graphOutcome(
      { status: 403, body: error('ErrorAccessDenied') },
      { ...context, step: 'draft' },
    );
    assert.match(draft.status === 'deferred' ? draft.reason : '', /Mail\.ReadWrite/);
  });

  test('an unknown sender mailbox, send-as denied or a too large message bounce', () => {
    assert.equal(
      graphOutcome({ status: 404, body: error('ErrorInvalidUser') }, context).status,
      'bounced',
    );
    assert.equal(
      graphOutcome({ status: 403, body: error('ErrorSendAsDenied') }, context).status,
      'bounced',
    );
    assert.equal(graphOutcome({ status: 413, body: {} }, context).status, 'bounced');
  });
});

describe('MIME passes', () => {
  const big = randomBytes(5000);
  const message = Buffer.from(
    [
      'From: a@contoso.com',
      'Content-Type: multipart/mixed; boundary="b1"',
      '',
      'preamble',
      '--b1',
      'Content-Type: text/plain',
      '',
      'hello',
      '--b1',
      'Content-Type: application/pdf;',
      ' name="x.pdf"',
      "Content-Disposition: attachment; filename*=utf-8''Gr%C3%BC%C3%9Fe.pdf",
      'Content-Transfer-Encoding: base64',
      '',
      big.toString('base64').replace(/.{76}/g, '$&\r\n'),
      '--b1',
      'Content-Type: image/png',
      'Content-Transfer-Encoding: base64',
      'Content-ID: <logo@x>',
      'Content-Disposition: inline',
      '',
      randomBytes(30).toString('base64'),
      '--b1--',
      '',
    ].join('\r\n'),
  );
  const open = async () => Readable.from([message.subarray(0, 333), message.subarray(333)]);
  const collect = async (stream: AsyncIterable<unknown>) => {
    const chunks: Buffer[] = [];
    for await (const chunk of stream) chunks.push(chunk as Buffer);
    return Buffer.concat(chunks);
  };

  test('the survey finds base64 parts of the size asked, with name, type and decoded size', async () => {
    const survey = await surveyParts(open, 1000);
    assert.equal(survey.size, message.length);
    assert.deepEqual(survey.large, [
      { index: 2, name: 'Grüße.pdf', contentType: 'application/pdf', size: 5000, inline: false },
    ]);
    const all = await surveyParts(open, 1);
    assert.deepEqual(all.large[1], {
      index: 3,
      name: 'attachment-3',
      contentType: 'image/png',
      size: 30,
      contentId: 'logo@x',
      inline: true,
    });
  });

  test('the draft is the message without the part and its delimiter line', async () => {
    const draft = (await collect(withoutParts(open, new Set([2])))).toString('latin1');
    assert.equal(
      draft,
      message
        .toString('latin1')
        .replace(
          /--b1\r\nContent-Type: application\/pdf;[\s\S]*?(?=--b1\r\nContent-Type: image)/,
          '',
        ),
    );
    assert.equal(
      (await collect(withoutParts(open, new Set()))).toString('latin1'),
      message.toString('latin1'),
    );
  });

  test('a part decodes to its bytes; base64 streams like Buffer.toString', async () => {
    assert.ok((await collect(decodedPart(open, 2))).equals(big));
    const odd = randomBytes(1001);
    const encoded = await collect(
      base64Of(Readable.from([odd.subarray(0, 1), odd.subarray(1, 500), odd.subarray(500)])),
    );
    assert.equal(encoded.toString('latin1'), odd.toString('base64'));
  });
});

describe('sender and headers', () => {
  const config = resolveConfig({ delivery: { mode: 'graph' } }, 'test');

  test('envelope recipients missing from To/Cc/Bcc are added as Bcc; the From address is read', () => {
    const headers =
      'From: "MFP" <Scanner@Contoso.com>\r\nTo: a@x.com, "B" <b@x.com>\r\nSubject: s\r\n';
    const same = graphHeaders(headers, ['A@x.com', 'b@x.com']);
    assert.equal(same.headers, headers);
    assert.equal(same.from, 'scanner@contoso.com');
    assert.equal(
      graphHeaders(headers, ['a@x.com', 'c@y.com']).headers,
      `${headers}Bcc: <c@y.com>\r\n`,
    );
  });

  test('the mailbox: From by default, or the fixed one', () => {
    assert.deepEqual(senderMailbox(config, 'scanner@contoso.com'), {
      mailbox: 'scanner@contoso.com',
    });
    assert.ok('problem' in senderMailbox(config, ''));
    const fixed = resolveConfig(
      { delivery: { mode: 'graph', graph: { sender: 'mailbox', mailbox: 'relay@contoso.com' } } },
      'test',
    );
    assert.deepEqual(senderMailbox(fixed, 'scanner@contoso.com'), { mailbox: 'relay@contoso.com' });
  });

  test('roles come from a JWT access token; an opaque token tells nothing', () => {
    const jwt =
      ['{}', '{"roles":["Mail.Send"]}'].map((p) => Buffer.from(p).toString('base64url')).join('.') +
      '.sig';
    assert.deepEqual(tokenRoles(jwt), ['Mail.Send']);
    assert.equal(tokenRoles('opaque-token'), undefined);
  });
});

describe('Graph settings', () => {
  test('sender "mailbox" needs the mailbox', () => {
    const base = resolveConfig({}, 'test');
    const result = configSchema.safeParse({
      ...base,
      delivery: { ...base.delivery, graph: { ...base.delivery.graph, sender: 'mailbox' } },
    });
    assert.equal(result.success, false);
    assert.deepEqual(result.error?.issues[0]?.path, ['delivery', 'graph', 'mailbox']);
  });

  test('the client secret is forgotten when the tenant or token URL changes without it', () => {
    const config = resolveConfig(
      { delivery: { graph: { tenant: 'contoso.com', clientSecret: 'S3cret' } } },
      'test',
    );
    const moved = forgetMovedSecrets(config, { delivery: { graph: { tenant: 'evil.example' } } });
    assert.deepEqual(moved.forgotten, [
      { key: 'delivery.graph.clientSecret', label: 'Microsoft Graph client secret' },
    ]);
    assert.equal(
      forgetMovedSecrets(config, {
        delivery: { graph: { baseUrl: 'https://graph.evil.example/v1.0' } },
      }).forgotten.length,
      1,
      'tokens would go to another server',
    );
    assert.deepEqual(
      forgetMovedSecrets(config, { delivery: { graph: { clientId: 'other' } } }).forgotten,
      [],
    );
  });

  test('the form shows the Graph fields, never the secret, and an empty secret keeps the stored one', () => {
    const config = resolveConfig(
      {
        delivery: {
          mode: 'graph',
          graph: { tenant: 'contoso.com', clientId: 'app-1', clientSecret: 'S3cret' },
        },
      },
      'test',
    );
    const values = formValues(config);
    assert.equal(values.mode, 'graph');
    assert.equal(values.graphTenant, 'contoso.com');
    assert.equal(values.graphClientSecret, '');
    assert.ok(!JSON.stringify(values).includes('S3cret'));
    assert.equal(secretStates(config).graphClientSecret?.stored, true);
    const patch = formPatch({
      ...values,
      graphSender: 'mailbox',
      graphMailbox: 'relay@contoso.com',
    }) as { delivery: { graph: Record<string, unknown> } };
    assert.equal(patch.delivery.graph.clientSecret, undefined);
    assert.equal(patch.delivery.graph.mailbox, 'relay@contoso.com');
  });
});
