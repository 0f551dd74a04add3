/**
 * The last line behind the settings: the SMTP client never logs in over a
 * connection without TLS, whatever target it is handed. A real smtp-server
 * upstream that offers AUTH without TLS records every command it gets.
 */
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { after, before, test } from 'node:test';
import { sendOne, type SmtpTarget } from '../../src/deliver/smtp-client.js';
import { SmtpPool } from '../../src/deliver/smtp-pool.js';
import { startUpstream, type Upstream } from '../support/upstream.js';
import { eventually } from '../support/wait.js';

let upstream: Upstream;

before(async () => {
  upstream = await startUpstream({
    offerTls: false,
    auth: { user: 'relay@contoso.test', pass: 'secret' },
    recordCommands: true,
    extra: { allowInsecureAuth: true },
  });
});
after(() => upstream.close());

test('credentials on a connection without TLS: nothing sent, the message deferred naming the setting', async () => {
  const target: SmtpTarget = {
    host: '127.0.0.1',
    port: upstream.port,
    security: 'none',
    verify: false,
    name: 'relay.test',
    timeoutMs: 5_000,
    auth: { method: 'password', user: 'relay@contoso.test', pass: 'secret' },
  };
  const [result] = await sendOne(
    target,
    { from: 'a@office.test', to: ['b@example.com'] },
    async () => Readable.from(['Subject: x\r\n\r\nx\r\n']),
    new SmtpPool(),
  );
  assert.equal(result?.outcome.status, 'deferred');
  assert.match(
    result?.outcome.status === 'deferred' ? result.outcome.reason : '',
    /^EAUTH: Not sending the user name and password over a connection without TLS: set delivery\.smarthost\.security to "starttls" or "tls" \(127\.0\.0\.1:\d+\)$/,
  );
  // The client says goodbye after giving up: every command it sent before is recorded by then
  await eventually('QUIT', () => upstream.commands.includes('QUIT'), { timeoutMs: 5_000 });
  assert.deepEqual(
    upstream.commands.filter((verb) => verb === 'AUTH' || verb === 'MAIL'),
    [],
  );
  assert.equal(upstream.messages.length, 0);
});
