/**
 * Our adaptations of smtp-server depend on its internals. These tests fail
 * loudly if an upgrade changes what we build on.
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { test } from 'node:test';
import { SMTPServer } from 'smtp-server';
import { SMTPConnection } from 'smtp-server/lib/smtp-connection.js';
import { SMTPStream } from 'smtp-server/lib/smtp-stream.js';
import { LegacySMTPServer, crlfNormalize } from '../../src/intake/legacy-server.js';

test('guard: the library still has the 100 ms greeting wait we replace', () => {
  const init = SMTPConnection.prototype.init.toString();
  assert.match(init, /_setListeners\(/, 'init() sets up listeners first');
  assert.match(
    init,
    /setTimeout\(\(\) => this\.connectionReady\(\), 100\)/,
    'the early-talker wait we remove',
  );
  assert.match(init, /maxClients/, 'the connection limit check we keep');
});

test('guard: the library still builds its parser in _createParser and connections in connect()', () => {
  assert.match(SMTPConnection.prototype._createParser.toString(), /new SMTPStream\(/);
  assert.match(SMTPConnection.prototype._createParser.toString(), /parser\.oncommand = /);
  const connect = SMTPServer.prototype.connect.toString();
  assert.match(connect, /new SMTPConnection\(this, socket, socketOptions\)/);
  assert.match(connect, /this\.connections\.add\(connection\)/);
  assert.match(connect, /connection\.init\(\)/);
  assert.equal(typeof SMTPStream.prototype._write, 'function');
});

test("guard: a connection leaves the server's set when the server closes it, and a 421 closes it (the per-client count and room-making rely on both)", () => {
  assert.match(
    SMTPConnection.prototype.close.toString(),
    /this\._server\.connections\.delete\(this\)/,
    'close() (QUIT, 421) releases the slot at once',
  );
  assert.match(
    SMTPConnection.prototype.send.toString(),
    /code === 421[\s\S]*this\.close\(\)/,
    'send(421) closes',
  );
  assert.match(
    SMTPConnection.prototype._resetSession.toString(),
    /session\.envelope = \{\s*mailFrom: false/,
    'RSET/EHLO clear the envelope we read for "message in progress"',
  );
});

test('guard: MAIL judges SIZE= in _validateMailParams, before onMailFrom, against the advertised size (our override leaves the limit to the hooks)', () => {
  assert.match(
    SMTPConnection.prototype._validateMailParams.toString(),
    /Number\(args\.SIZE\) > this\._server\.options\.size/,
  );
  assert.match(
    SMTPConnection.prototype.handler_MAIL.toString(),
    /this\._validateMailParams\(parsed\)[\s\S]*this\._server\.onMailFrom\(/,
  );
});

test('crlfNormalize adds CR only where it is missing, across chunk boundaries', () => {
  assert.equal(crlfNormalize(Buffer.from('a\nb\r\nc\n'), -1).toString(), 'a\r\nb\r\nc\r\n');
  assert.equal(
    crlfNormalize(Buffer.from('\nx'), 0x0d).toString(),
    '\nx',
    'CR ended the previous chunk',
  );
  assert.equal(crlfNormalize(Buffer.from('\nx'), 0x61).toString(), '\r\nx');
  const same = Buffer.from('no newline');
  assert.equal(crlfNormalize(same, -1), same, 'untouched chunks are not copied');
  const binary = Buffer.from([0xff, 0x00, 0x0a, 0x80]);
  assert.deepEqual(
    [...crlfNormalize(binary, -1)],
    [0xff, 0x00, 0x0d, 0x0a, 0x80],
    '8-bit bytes pass untouched',
  );
});

async function withServer(
  onMessage: (body: string) => void,
  run: (port: number) => Promise<void>,
): Promise<void> {
  const server = new LegacySMTPServer({
    authOptional: true,
    disabledCommands: ['STARTTLS'],
    disableReverseLookup: true,
    logger: false,
    onData(stream, _session, callback) {
      let body = '';
      stream.on('data', (chunk: Buffer) => (body += chunk.toString('latin1')));
      stream.on('end', () => {
        onMessage(body);
        callback(null, 'ok');
      });
    },
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  try {
    await run((server.server.address() as net.AddressInfo).port);
  } finally {
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}

/** Sends `input` in pieces of `size` bytes and collects everything the server says until it closes */
function converse(
  port: number,
  input: string,
  size: number,
): Promise<{ replies: string; greetingMs: number }> {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    let greetingMs = -1;
    let replies = '';
    const socket = net.connect(port, '127.0.0.1');
    socket.on('data', (d) => {
      if (greetingMs < 0) {
        greetingMs = Date.now() - started;
        const bytes = Buffer.from(input, 'latin1');
        for (let i = 0; i < bytes.length; i += size) socket.write(bytes.subarray(i, i + size));
      }
      replies += d.toString();
    });
    socket.on('close', () => resolve({ replies, greetingMs }));
    socket.on('error', reject);
  });
}

test('greets at once (no 100 ms wait)', async () => {
  await withServer(
    () => undefined,
    async (port) => {
      const times: number[] = [];
      for (let i = 0; i < 4; i++) {
        const { greetingMs, replies } = await converse(port, 'QUIT\r\n', 100);
        assert.match(replies, /^220 /);
        times.push(greetingMs);
      }
      // The first connection pays for lazy loading; the stock library never greets in under 100 ms
      assert.ok(Math.min(...times) < 50, `greeting took ${times.join(', ')} ms`);
    },
  );
});

for (const size of [1, 2, 3, 7, 1000]) {
  test(`bare-LF session including "\\n.\\n" ends DATA, in ${size}-byte pieces`, async () => {
    const bodies: string[] = [];
    await withServer(
      (b) => bodies.push(b),
      async (port) => {
        const { replies } = await converse(
          port,
          'HELO x\nMAIL FROM:<a@b.test>\nRCPT TO:<c@d.test>\nDATA\nSubject: t\n\n..dot\n.\nQUIT\n',
          size,
        );
        assert.match(replies, /250 ok\r\n221 /);
      },
    );
    assert.deepEqual(bodies, ['Subject: t\r\n\r\n.dot\r\n']);
  });
}

test('a CRLF session is unchanged, dot-stuffing undone', async () => {
  const bodies: string[] = [];
  await withServer(
    (b) => bodies.push(b),
    async (port) => {
      await converse(
        port,
        'EHLO x\r\nMAIL FROM:<a@b.test>\r\nRCPT TO:<c@d.test>\r\nDATA\r\nA: b\r\n\r\n..x\r\n...\r\n.\r\nQUIT\r\n',
        5,
      );
    },
  );
  assert.deepEqual(bodies, ['A: b\r\n\r\n.x\r\n..\r\n']);
});
