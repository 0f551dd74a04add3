/** The POP3 pieces that need no socket: command table, maildrop, SASL PLAIN, dot-stuffing, TOP, line reader */
import assert from 'node:assert/strict';
import { PassThrough, Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { COMMANDS, capabilities, type SessionState } from '../../src/pop3/commands.js';
import { LineReader } from '../../src/pop3/lines.js';
import { Maildrop } from '../../src/pop3/maildrop.js';
import { DotStuffer, headerAndLines } from '../../src/pop3/message-stream.js';
import { decodePlain } from '../../src/pop3/sasl.js';

/** Feeds `chunks` through the transforms and returns everything that came out */
async function through(chunks: Buffer[], bodyLines?: number): Promise<string> {
  const out: Buffer[] = [];
  const sink = async (source: AsyncIterable<Buffer>) => {
    for await (const chunk of source) out.push(chunk);
  };
  if (bodyLines === undefined) await pipeline(Readable.from(chunks), new DotStuffer(), sink);
  else
    await pipeline(
      Readable.from(chunks),
      (s: AsyncIterable<Buffer>) => headerAndLines(s, bodyLines),
      new DotStuffer(),
      sink,
    );
  return Buffer.concat(out).toString('latin1');
}

/** Splits `text` at the given offsets */
const split = (text: string, cuts: number[]) => {
  const points = [...new Set(cuts.map((c) => c % (text.length + 1)))].sort((a, b) => a - b);
  const parts: Buffer[] = [];
  let last = 0;
  for (const p of [...points, text.length]) {
    parts.push(Buffer.from(text.slice(last, p), 'latin1'));
    last = p;
  }
  return parts;
};

/** The obvious whole-string reference for dot-stuffing */
const stuffed = (text: string) =>
  `${text.replace(/(^|\n)\./g, '$1..')}${text === '' || text.endsWith('\n') ? '' : '\r\n'}.\r\n`;

describe('command table', () => {
  test('every RFC 1939/2449/2595/5034 command is listed with its states', () => {
    const states = Object.fromEntries(
      [...COMMANDS].map(([verb, c]) => [verb, [...c.states].sort().join(',')]),
    );
    assert.deepEqual(states, {
      USER: 'authorization',
      PASS: 'authorization',
      AUTH: 'authorization',
      STLS: 'authorization',
      STAT: 'transaction',
      LIST: 'transaction',
      UIDL: 'transaction',
      RETR: 'transaction',
      TOP: 'transaction',
      DELE: 'transaction',
      RSET: 'transaction',
      NOOP: 'transaction',
      CAPA: 'authorization,transaction',
      QUIT: 'authorization,transaction',
    });
  });

  test('a command refuses to run outside its states and runs inside them', async () => {
    const replies: string[] = [];
    const ctx = {
      ok: async (t: string) => void replies.push(`+OK ${t}`),
      err: async (t: string) => void replies.push(`-ERR ${t}`),
    } as never;
    const authorization: SessionState = { name: 'authorization', user: null };
    const transaction: SessionState = {
      name: 'transaction',
      maildrop: new Maildrop('alice', [{ uid: 'a.1', size: 10 }]),
      release: () => undefined,
    };
    assert.equal(COMMANDS.get('STAT')?.run(ctx, authorization, ''), null);
    assert.equal(COMMANDS.get('USER')?.run(ctx, transaction, 'bob'), null);
    assert.equal(COMMANDS.get('STAT')?.run(ctx, { name: 'update' }, ''), null);
    await COMMANDS.get('STAT')?.run(ctx, transaction, '');
    await COMMANDS.get('USER')?.run(
      { ...(ctx as object), loginAllowed: true } as never,
      authorization,
      ' alice ',
    );
    assert.deepEqual(replies, ['+OK 1 10', '+OK Send the password of alice']);
    assert.equal(authorization.name === 'authorization' && authorization.user, 'alice');
  });

  test('capabilities hide USER and SASL when login needs TLS, and STLS once encrypted', () => {
    const auth: SessionState = { name: 'authorization', user: null };
    assert.deepEqual(capabilities({ secure: false, loginAllowed: true }, auth), [
      'TOP',
      'UIDL',
      'RESP-CODES',
      'AUTH-RESP-CODE',
      'USER',
      'SASL PLAIN',
      'STLS',
      'IMPLEMENTATION edge-relay',
    ]);
    assert.deepEqual(capabilities({ secure: false, loginAllowed: false }, auth), [
      'TOP',
      'UIDL',
      'RESP-CODES',
      'AUTH-RESP-CODE',
      'STLS',
      'IMPLEMENTATION edge-relay',
    ]);
    assert.deepEqual(capabilities({ secure: true, loginAllowed: true }, auth), [
      'TOP',
      'UIDL',
      'RESP-CODES',
      'AUTH-RESP-CODE',
      'USER',
      'SASL PLAIN',
      'IMPLEMENTATION edge-relay',
    ]);
  });
});

describe('maildrop', () => {
  const drop = () =>
    new Maildrop('alice', [
      { uid: 'a.1', size: 100 },
      { uid: 'b.2', size: 200 },
      { uid: 'c.3', size: 300 },
    ]);

  test('numbers from 1, rejects junk numbers with the value quoted', () => {
    const m = drop();
    assert.deepEqual(m.lookup(' 2 '), { ok: true, number: 2, message: { uid: 'b.2', size: 200 } });
    assert.deepEqual(m.lookup('0'), { ok: false, error: 'Not a message number: "0"' });
    assert.deepEqual(m.lookup('x1'), { ok: false, error: 'Not a message number: "x1"' });
    assert.deepEqual(m.lookup('4'), { ok: false, error: 'No message 4; there are 3' });
    assert.deepEqual(m.lookup(undefined), { ok: false, error: 'A message number is needed' });
  });

  test('DELE marks, hides from STAT/LIST, RSET unmarks; deletedUids is what UPDATE removes', () => {
    const m = drop();
    m.markDeleted(3);
    m.markDeleted(1);
    assert.deepEqual(m.stat(), { count: 1, bytes: 200 });
    assert.deepEqual(m.lookup('1'), { ok: false, error: 'Message 1 is already deleted' });
    assert.deepEqual(
      m.visible().map((v) => v.number),
      [2],
    );
    assert.deepEqual(m.deletedUids(), ['a.1', 'c.3']);
    m.reset();
    assert.deepEqual(m.stat(), { count: 3, bytes: 600 });
    assert.deepEqual(m.deletedUids(), []);
  });
});

describe('SASL PLAIN', () => {
  const b64 = (text: string) => Buffer.from(text).toString('base64');
  test('decodes authcid and password, with or without an equal authzid', () => {
    assert.deepEqual(decodePlain(b64('\0alice\0secret pass')), {
      user: 'alice',
      password: 'secret pass',
    });
    assert.deepEqual(decodePlain(b64('alice\0alice\0pw')), { user: 'alice', password: 'pw' });
  });
  test('refuses other authzids, missing parts and non-base64', () => {
    assert.equal(decodePlain(b64('bob\0alice\0pw')), null);
    assert.equal(decodePlain(b64('\0alice\0')), null);
    assert.equal(decodePlain(b64('alice:pw')), null);
    assert.equal(decodePlain('!!not base64!!'), null);
    assert.equal(decodePlain(''), null);
  });
});

describe('dot-stuffing', () => {
  test('stuffs dots at line starts and ends with the terminator', async () => {
    assert.equal(await through([Buffer.from('.a\r\nb.\r\n..c\r\n')]), '..a\r\nb.\r\n...c\r\n.\r\n');
    assert.equal(
      await through([Buffer.from('x\r\n.')]),
      'x\r\n..\r\n.\r\n',
      'no final line break: one is added',
    );
    assert.equal(await through([]), '.\r\n', 'empty message');
  });

  test('a dot right after a chunk boundary is stuffed too', async () => {
    assert.equal(await through([Buffer.from('a\r\n'), Buffer.from('.b\r\n')]), 'a\r\n..b\r\n.\r\n');
    assert.equal(
      await through([Buffer.from('a\r'), Buffer.from('\n.'), Buffer.from('b\r\n')]),
      'a\r\n..b\r\n.\r\n',
    );
  });

  test('equals the whole-string reference however the input is chunked', async () => {
    const text = fc
      .array(fc.constantFrom('.', 'a', '\r\n', '\n', '\r', ' '), { maxLength: 60 })
      .map((parts) => parts.join(''));
    await fc.assert(
      fc.asyncProperty(text, fc.array(fc.nat(), { maxLength: 6 }), async (message, cuts) => {
        assert.equal(await through(split(message, cuts)), stuffed(message));
      }),
      { numRuns: 300 },
    );
  });
});

describe('TOP', () => {
  const message = 'Subject: hi\r\nFrom: a@b\r\n\r\nline 1\r\n.line 2\r\nline 3\r\n';
  test('returns the header, the blank line and n body lines, dot-stuffed', async () => {
    assert.equal(await through([Buffer.from(message)], 0), 'Subject: hi\r\nFrom: a@b\r\n\r\n.\r\n');
    assert.equal(
      await through([Buffer.from(message)], 2),
      'Subject: hi\r\nFrom: a@b\r\n\r\nline 1\r\n..line 2\r\n.\r\n',
    );
    assert.equal(
      await through([Buffer.from(message)], 99),
      `${message.replace('.line', '..line')}.\r\n`,
    );
  });

  test('finds the blank line across any chunking', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.nat(), { maxLength: 8 }),
        fc.integer({ min: 0, max: 4 }),
        async (cuts, n) => {
          const expected = ['Subject: hi', 'From: a@b', '', 'line 1', '..line 2', 'line 3']
            .slice(0, 3 + n)
            .join('\r\n');
          assert.equal(await through(split(message, cuts), n), `${expected}\r\n.\r\n`);
        },
      ),
      { numRuns: 200 },
    );
  });

  test('stops reading the source early', async () => {
    let produced = 0;
    async function* endless() {
      yield Buffer.from('Subject: x\r\n\r\n');
      for (; produced < 100_000; produced++) yield Buffer.from('body line\r\n');
    }
    const out: Buffer[] = [];
    for await (const chunk of headerAndLines(endless(), 3)) out.push(chunk);
    assert.equal(
      Buffer.concat(out).toString(),
      'Subject: x\r\n\r\nbody line\r\nbody line\r\nbody line\r\n',
    );
    assert.ok(produced < 10, `read only what it needed (${produced} lines)`);
  });
});

describe('line reader', () => {
  test('splits lines on LF across chunks, strips CR, reports an overlong line once and goes on', async () => {
    const input = new PassThrough();
    const reader = new LineReader(10);
    reader.attach(input);
    input.write('USER al');
    input.write('ice\r\nNOOP\n');
    input.write('12345678901\r\n');
    input.write(`${'x'.repeat(25)}`);
    input.write(`${'y'.repeat(25)}\r\nQUIT\r\n`);
    input.end();
    const lines = [];
    for (let line = await reader.next(); line; line = await reader.next()) lines.push(line);
    assert.deepEqual(lines, [
      { kind: 'line', text: 'USER alice' },
      { kind: 'line', text: 'NOOP' },
      { kind: 'too-long' },
      { kind: 'too-long' },
      { kind: 'line', text: 'QUIT' },
    ]);
  });

  test('detach drops unread input (no plaintext injection across STLS)', async () => {
    const plain = new PassThrough();
    const reader = new LineReader(100);
    reader.attach(plain);
    plain.write('STLS\r\nUSER injected\r\n');
    assert.deepEqual(await reader.next(), { kind: 'line', text: 'STLS' });
    reader.detach();
    const secure = new PassThrough();
    reader.attach(secure);
    secure.write('CAPA\r\n');
    assert.deepEqual(await reader.next(), { kind: 'line', text: 'CAPA' });
  });

  test('stop makes next() return null', async () => {
    const reader = new LineReader(100);
    reader.attach(new PassThrough());
    const pending = reader.next();
    reader.stop();
    assert.equal(await pending, null);
  });
});
