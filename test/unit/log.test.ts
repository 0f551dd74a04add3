/** The process logger: secrets never reach a line, whatever level of the logged object they sit at */
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { test } from 'node:test';
import { createLogger } from '../../src/log.js';

function captured(): {
  log: ReturnType<typeof createLogger>;
  lines: () => Record<string, unknown>[];
} {
  let text = '';
  const destination = new Writable({
    write: (chunk, _e, done) => ((text += String(chunk)), done()),
  });
  const log = createLogger({ level: 'info', destination });
  return {
    log,
    lines: () =>
      text
        .trim()
        .split('\n')
        .map((line) => JSON.parse(line)),
  };
}

test('secrets are redacted at the top, one and two levels down, in a child’s lines and in errors', () => {
  const { log, lines } = captured();
  const upstream = { host: 'smtp.example.com', auth: { user: 'relay', pass: 'hunter2' } };
  log.info({ password: 'p1', upstream, token: 't1' }, 'saved');
  log.child({ queueId: 'Q1' }).info({ accessToken: 'a1', authorization: 'Bearer b1' }, 'sent');
  const failure = Object.assign(new Error('login failed'), { refreshToken: 'r1', code: 'EAUTH' });
  log.error({ err: failure }, 'oauth');
  log.info({ deep: { a: { b: { secret: 'beyond the third level' } } } }, 'deep');
  const [saved, sent, oauth, deep] = lines();
  const written = JSON.stringify([saved, sent, oauth]);
  for (const secret of ['p1', 'hunter2', 't1', 'a1', 'Bearer b1', 'r1'])
    assert.ok(!written.includes(secret), `${secret} is not written`);
  assert.equal(saved!.password, '[redacted]');
  assert.deepEqual(saved!.upstream, {
    host: 'smtp.example.com',
    auth: { user: 'relay', pass: '[redacted]' },
  });
  assert.equal(upstream.auth.pass, 'hunter2', 'the caller’s object is not changed');
  assert.equal(sent!.queueId, 'Q1', 'the child’s bindings stay');
  assert.equal(sent!.accessToken, '[redacted]');
  const err = oauth!.err as Record<string, unknown>;
  assert.equal(err.message, 'login failed', 'an error keeps its message');
  assert.match(String(err.stack), /login failed/);
  assert.equal(err.code, 'EAUTH');
  assert.equal(err.refreshToken, '[redacted]');
  assert.deepEqual(
    deep!.deep,
    { a: { b: { secret: 'beyond the third level' } } },
    'the depth is bounded',
  );
});

test('an object without secrets is logged as it is', () => {
  const { log, lines } = captured();
  const err = new Error('connection refused');
  log.warn({ err, rcpt: ['a@example.com'], size: 2100 }, 'deferred');
  const [line] = lines();
  assert.deepEqual(line!.rcpt, ['a@example.com']);
  assert.equal(
    (line!.err as Record<string, unknown>).type,
    'Error',
    'pino’s error serializer still applies',
  );
});
