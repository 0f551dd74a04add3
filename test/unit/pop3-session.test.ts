/**
 * The POP3 state machine over real sockets, in-process: a real MailboxStore in
 * a temp folder, our server on port 0, and a raw client saying exactly what
 * stock clients never do (wrong states, garbage, pipelined lines, dropped connections).
 */
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { afterEach, describe, test } from 'node:test';
import { resolveConfig } from '../../src/config/validate.js';
import { createLogger } from '../../src/log.js';
import { enforceMailboxLimits } from '../../src/mailbox/limits.js';
import { MailboxStore } from '../../src/mailbox/store.js';
import { startPop3, type Pop3Server } from '../../src/pop3/server.js';
import { RawPop3 } from '../support/pop3.js';

const PASSWORD = 'alice-pass-1';
const FIRST =
  'Subject: first\r\nFrom: printer@office.test\r\n\r\nhello\r\n.dotted line\r\n..two dots\r\nlast\r\n';
const SECOND = 'Subject: second\r\n\r\nbody\r\n';

interface Fixture {
  store: MailboxStore;
  server: Pop3Server;
  port: number;
  logs: () => Record<string, unknown>[];
  clients: RawPop3[];
  connect(options?: { tls?: boolean; port?: number }): Promise<RawPop3>;
  login(client?: RawPop3): Promise<RawPop3>;
}

let running: Fixture | undefined;
afterEach(async () => {
  running?.clients.forEach((c) => c.close());
  await running?.server.stop();
  running = undefined;
});

async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

async function setup(pop3: Record<string, unknown> = {}): Promise<Fixture> {
  const dataDir = mkdtempSync(path.join(tmpdir(), 'edge-relay-pop3-'));
  const lines: string[] = [];
  const destination = new PassThrough();
  destination.on('data', (d: Buffer) => lines.push(...d.toString().split('\n').filter(Boolean)));
  const log = createLogger({ level: 'debug', destination });
  const config = resolveConfig({ dataDir, pop3: { host: '127.0.0.1', port: 0, ...pop3 } }, 'test');
  const store = await MailboxStore.open(dataDir, log);
  await store.add('alice', PASSWORD);
  await store.deliver('alice', Readable.from([Buffer.from(FIRST)]));
  await new Promise((resolve) => setTimeout(resolve, 5));
  await store.deliver('alice', Readable.from([Buffer.from(SECOND)]));
  const server = await startPop3({ config: () => config, mailboxes: store, log, dataDir });
  const clients: RawPop3[] = [];
  const fixture: Fixture = {
    store,
    server,
    port: server.addresses.pop3.port,
    logs: () => lines.map((l) => JSON.parse(l) as Record<string, unknown>),
    clients,
    async connect(options = {}) {
      const client = await RawPop3.connect(options.port ?? fixture.port, { tls: options.tls });
      clients.push(client);
      assert.match(await client.line(), /^\+OK edge-relay POP3 server ready$/);
      return client;
    },
    async login(client) {
      const c = client ?? (await fixture.connect());
      assert.match(await c.command('USER alice'), /^\+OK/);
      assert.match(await c.command(`PASS ${PASSWORD}`), /^\+OK Mailbox alice has 2 messages/);
      return c;
    },
  };
  running = fixture;
  return fixture;
}

describe('POP3 session: states and commands', () => {
  test('transaction commands are refused before login; unknown and empty commands get -ERR with the value quoted', async () => {
    const f = await setup();
    const c = await f.connect();
    assert.equal(await c.command('STAT'), '-ERR STAT is not valid before logging in');
    assert.equal(await c.command('RETR 1'), '-ERR RETR is not valid before logging in');
    assert.equal(await c.command('FROB x'), '-ERR Unknown command "FROB"');
    assert.equal(await c.command(''), '-ERR Empty command line');
    assert.equal(await c.command('PASS x'), '-ERR Send USER first');
    const capa = await c.multiCommand('CAPA');
    assert.equal(
      capa,
      '+OK Capability list follows\r\nTOP\r\nUIDL\r\nRESP-CODES\r\nAUTH-RESP-CODE\r\nUSER\r\nSASL PLAIN\r\nSTLS\r\nIMPLEMENTATION edge-relay\r\n.\r\n',
    );
    await f.login(c);
    assert.equal(await c.command('USER bob'), '-ERR USER is not valid after logging in');
    assert.equal(await c.command('STLS'), '-ERR STLS is not valid after logging in');
    assert.equal(await c.command('QUIT'), '+OK edge-relay signing off (0 messages deleted)');
    await c.waitClosed();
  });

  test('STAT, LIST and UIDL give exact octet counts and the file names as unique ids', async () => {
    const f = await setup();
    const c = await f.login();
    const uids = (await f.store.list('alice')).map((m) => m.uid);
    const sizes = [Buffer.byteLength(FIRST), Buffer.byteLength(SECOND)];
    assert.equal(await c.command('STAT'), `+OK 2 ${sizes[0]! + sizes[1]!}`);
    assert.equal(
      await c.multiCommand('LIST'),
      `+OK 2 messages (${sizes[0]! + sizes[1]!} octets)\r\n1 ${sizes[0]}\r\n2 ${sizes[1]}\r\n.\r\n`,
    );
    assert.equal(await c.command('LIST 2'), `+OK 2 ${sizes[1]}`);
    assert.equal(await c.command('LIST 3'), '-ERR No message 3; there are 2');
    assert.equal(
      await c.multiCommand('UIDL'),
      `+OK Unique ids follow\r\n1 ${uids[0]}\r\n2 ${uids[1]}\r\n.\r\n`,
    );
    assert.equal(await c.command('UIDL 1'), `+OK 1 ${uids[0]}`);
  });

  test('RETR sends the exact bytes dot-stuffed; TOP the header and n lines', async () => {
    const f = await setup();
    const c = await f.login();
    const retr = await c.multiCommand('RETR 1');
    assert.equal(
      retr,
      `+OK ${Buffer.byteLength(FIRST)} octets\r\n${FIRST.replace('\r\n.dotted', '\r\n..dotted').replace('\r\n..two', '\r\n...two')}.\r\n`,
    );
    assert.equal(
      await c.multiCommand('TOP 1 2'),
      '+OK Header and 2 body lines follow\r\nSubject: first\r\nFrom: printer@office.test\r\n\r\nhello\r\n..dotted line\r\n.\r\n',
    );
    assert.equal(
      await c.multiCommand('TOP 2 0'),
      '+OK Header and 0 body lines follow\r\nSubject: second\r\n\r\n.\r\n',
    );
    assert.equal(await c.command('TOP 1'), '-ERR Use TOP <message> <lines>, not "TOP 1"');
    assert.equal(await c.command('RETR abc'), '-ERR Not a message number: "abc"');
  });

  test('AUTH PLAIN with an initial response, with a continuation, and cancelled', async () => {
    const f = await setup();
    const plain = Buffer.from(`\0alice\0${PASSWORD}`).toString('base64');
    const a = await f.connect();
    assert.equal(await a.command('AUTH'), '+OK Mechanisms follow');
    assert.equal(await a.line(), 'PLAIN');
    assert.equal(await a.line(), '.');
    assert.equal(await a.command('AUTH PLAIN'), '+ ');
    assert.equal(await a.command('*'), '-ERR Authentication cancelled');
    assert.equal(
      await a.command('AUTH CRAM-MD5'),
      '-ERR Unsupported SASL mechanism "CRAM-MD5"; use PLAIN',
    );
    assert.equal(await a.command('AUTH PLAIN'), '+ ');
    assert.match(await a.command(plain), /^\+OK Mailbox alice has 2 messages/);
    assert.match(await a.command('QUIT'), /^\+OK/);
    const b = await f.connect();
    assert.match(await b.command(`AUTH PLAIN ${plain}`), /^\+OK Mailbox alice has 2 messages/);
  });

  test('wrong passwords get -ERR [AUTH]; the next try from that address waits longer before it is checked; the password is never logged', async () => {
    const f = await setup();
    const c = await f.connect();
    const timed = async (text: string) => {
      const started = Date.now();
      const reply = await c.command(text, 15_000);
      return { reply, ms: Date.now() - started };
    };
    assert.match(await c.command('USER alice'), /^\+OK/);
    const first = await timed('PASS wrong-guess-1');
    assert.match(await c.command('USER nobody'), /^\+OK/);
    const second = await timed('PASS wrong-guess-2');
    assert.match(await c.command('USER alice'), /^\+OK/);
    const third = await timed('PASS wrong-guess-3');
    assert.equal(first.reply, '-ERR [AUTH] Wrong mailbox name or password');
    assert.equal(
      second.reply,
      '-ERR [AUTH] Wrong mailbox name or password',
      'unknown user: the same answer',
    );
    assert.ok(second.ms >= 450, `the second try waited (${second.ms} ms)`);
    assert.ok(
      third.ms >= 950 && third.ms > second.ms,
      `the third waited longer (${second.ms} -> ${third.ms} ms)`,
    );
    await f.login(c);
    const text = JSON.stringify(f.logs());
    assert.ok(!text.includes('wrong-guess') && !text.includes(PASSWORD), 'no password in the log');
    assert.ok(f.logs().some((l) => l.msg === 'POP3 login failed' && l.user === 'nobody'));
  });

  test('one session per mailbox: a second login gets [IN-USE] until the first ends', async () => {
    const f = await setup();
    const first = await f.login();
    const second = await f.connect();
    assert.match(await second.command('USER alice'), /^\+OK/);
    assert.match(
      await second.command(`PASS ${PASSWORD}`),
      /^-ERR \[IN-USE\] Mailbox "alice" is open in another session/,
    );
    assert.match(await first.command('QUIT'), /^\+OK/);
    await f.login(second);
  });

  test('the session sees its login snapshot: mail arriving meanwhile shows at the next login', async () => {
    const f = await setup();
    const c = await f.login();
    await f.store.deliver('alice', Readable.from([Buffer.from('Subject: third\r\n\r\nlate\r\n')]));
    assert.match(await c.command('STAT'), /^\+OK 2 /);
    assert.match(await c.command('QUIT'), /^\+OK/);
    const next = await f.connect();
    assert.match(await next.command('USER alice'), /^\+OK/);
    assert.match(await next.command(`PASS ${PASSWORD}`), /^\+OK Mailbox alice has 3 messages/);
  });

  test('DELE marks, RSET unmarks, a dropped connection deletes nothing, QUIT deletes', async () => {
    const f = await setup();
    const uids = (await f.store.list('alice')).map((m) => m.uid);
    const a = await f.login();
    assert.equal(await a.command('DELE 1'), '+OK Message 1 marked for deletion at QUIT');
    assert.equal(await a.command('DELE 1'), '-ERR Message 1 is already deleted');
    assert.equal(await a.command('RETR 1'), '-ERR Message 1 is already deleted');
    assert.match(await a.command('STAT'), /^\+OK 1 /);
    a.close();
    const b = await f.login();
    assert.equal((await f.store.list('alice')).length, 2, 'dropped connection: nothing deleted');
    assert.match(await b.command('DELE 2'), /^\+OK/);
    assert.match(await b.command('RSET'), /^\+OK Deletion marks removed; 2 messages/);
    assert.match(await b.command('DELE 1'), /^\+OK/);
    assert.equal(await b.command('QUIT'), '+OK edge-relay signing off (1 messages deleted)');
    await b.waitClosed();
    assert.deepEqual(
      (await f.store.list('alice')).map((m) => m.uid),
      [uids[1]],
    );
    assert.ok(
      f
        .logs()
        .some(
          (l) => l.msg === 'POP3 session ended without QUIT; nothing deleted' && l.marked === 1,
        ),
    );
  });
});

describe('POP3 session: bad input, limits and timeouts', () => {
  test('long lines and binary garbage get -ERR and the session goes on', async () => {
    const f = await setup();
    const c = await f.connect();
    assert.equal(await c.command('X'.repeat(100_000)), '-ERR Line longer than 4096 octets ignored');
    assert.match(
      await c.command(Buffer.from([0, 1, 2, 0xff, 0xfe, 0x80, 0x41]).toString('latin1')),
      /^-ERR Unknown command "\?+/,
    );
    c.write(Buffer.from([0xde, 0xad, 0xbe, 0xef, 0x0d, 0x0a]));
    assert.match(await c.line(), /^-ERR Unknown command/);
    await f.login(c);
    assert.match(await c.command('NOOP'), /^\+OK/);
  });

  test('pipelined commands are answered in order', async () => {
    const f = await setup();
    const c = await f.connect();
    c.write(`USER alice\r\nPASS ${PASSWORD}\r\nSTAT\r\nNOOP\r\n`);
    assert.match(await c.line(), /^\+OK Send the password/);
    assert.match(await c.line(), /^\+OK Mailbox alice/);
    assert.match(await c.line(), /^\+OK 2 \d+$/);
    assert.equal(await c.line(), '+OK Still here');
  });

  test('too many errors close the connection; the server lives on', async () => {
    const f = await setup();
    const c = await f.connect();
    c.write('BOGUS\r\n'.repeat(30));
    for (let i = 0; i < 20; i++) assert.match(await c.line(), /^-ERR Unknown command "BOGUS"$/);
    assert.equal(await c.line(), '-ERR Too many errors, closing the connection');
    await c.waitClosed();
    await f.login();
  });

  test('an idle session is closed after pop3.idleTimeout', async () => {
    const f = await setup({ idleTimeout: '1s' });
    const c = await f.login();
    const started = Date.now();
    assert.equal(await c.line(5000), '-ERR Idle for too long, closing the connection');
    await c.waitClosed();
    assert.ok(Date.now() - started >= 900);
    const again = await f.login();
    assert.match(await again.command('STAT'), /^\+OK 2/, 'the lock was released');
  });

  test('NOOP, STAT and LIST every few hundred ms do not keep a session (and its mailbox lock) for ever; RETR does', async () => {
    const f = await setup({ idleTimeout: '1s' });
    const busy = await f.login();
    const started = Date.now();
    let closing = '';
    // Bounded: 20 rounds of 250 ms, far past the 1 s idle limit
    for (let round = 0; round < 20 && !closing; round++) {
      const reply = await busy.command(['NOOP', 'STAT', 'LIST 1'][round % 3] ?? 'NOOP', 5_000);
      if (reply.startsWith('-ERR')) closing = reply;
      else await new Promise((resolve) => setTimeout(resolve, 250));
    }
    assert.equal(closing, '-ERR Idle for too long, closing the connection');
    const lasted = Date.now() - started;
    assert.ok(lasted >= 900 && lasted < 3_000, `closed after ${lasted} ms`);
    await busy.waitClosed();
    const reader = await f.login();
    assert.match(await reader.command('STAT'), /^\+OK 2/, 'the lock was released');
    for (let round = 0; round < 6; round++) {
      assert.match(
        (await reader.multiCommand('RETR 1')).split('\r\n')[0] ?? '',
        /^\+OK/,
        'fetching mail is activity',
      );
      await new Promise((resolve) => setTimeout(resolve, 300));
    }
    assert.match(await reader.command('QUIT'), /^\+OK/);
  });

  test('over pop3.maxConnections a client gets a clear -ERR', async () => {
    const f = await setup({ maxConnections: 2 });
    await f.connect();
    await f.connect();
    const third = await RawPop3.connect(f.port);
    f.clients.push(third);
    assert.equal(
      await third.line(),
      '-ERR [SYS/TEMP] Too many POP3 connections (limit 2), try again later',
    );
    await third.waitClosed();
  });

  test('stop() ends open sessions without deleting marked messages', async () => {
    const f = await setup();
    const c = await f.login();
    assert.match(await c.command('DELE 1'), /^\+OK/);
    await f.server.stop();
    assert.equal(
      await c.line(),
      '-ERR [SYS/TEMP] edge-relay is shutting down, try again in a minute',
    );
    await c.waitClosed();
    assert.equal((await f.store.list('alice')).length, 2);
    running = undefined;
  });
});

describe('POP3 session: TLS', () => {
  test('STLS upgrades, drops plaintext sent after it, and the session continues', async () => {
    const f = await setup();
    const c = await f.connect();
    c.write('STLS\r\nUSER injected\r\n');
    assert.equal(await c.line(), '+OK Begin TLS negotiation');
    const secure = await c.upgrade();
    assert.equal(secure.encrypted, true);
    assert.match(String(secure.getPeerCertificate().subject?.CN), /edge-relay\.lan/);
    const capa = await c.multiCommand('CAPA');
    assert.ok(!capa.includes('STLS'), 'STLS no longer offered');
    assert.equal(
      await c.command('PASS x'),
      '-ERR Send USER first',
      'the injected USER was dropped',
    );
    await f.login(c);
    assert.match(await c.multiCommand('RETR 2'), /^\+OK \d+ octets\r\nSubject: second/);
  });

  test('requireTlsForLogin refuses USER, PASS and AUTH in clear text, and allows them after STLS', async () => {
    const f = await setup({ requireTlsForLogin: true });
    const c = await f.connect();
    assert.ok(!(await c.multiCommand('CAPA')).includes('USER'));
    assert.match(
      await c.command('USER alice'),
      /^-ERR \[SYS\/PERM\] Log in only over an encrypted connection/,
    );
    assert.match(await c.command('PASS x'), /^-ERR \[SYS\/PERM\]/);
    assert.match(await c.command('AUTH PLAIN abcd'), /^-ERR \[SYS\/PERM\]/);
    assert.match(await c.command('STLS'), /^\+OK/);
    await c.upgrade();
    await f.login(c);
  });

  test('the implicit-TLS port serves POP3 from the first byte', async () => {
    const f = await setup({ tls: { port: await freePort() } });
    const port = f.server.addresses.pop3s?.port;
    assert.ok(port);
    const c = await f.connect({ tls: true, port });
    assert.ok(!(await c.multiCommand('CAPA')).includes('STLS'));
    await f.login(c);
  });

  test('stop() also ends a connection stuck before its TLS handshake', async () => {
    const f = await setup({ tls: { port: await freePort() } });
    const silent = net.connect(f.server.addresses.pop3s?.port ?? 0, '127.0.0.1');
    silent.on('error', () => undefined);
    await new Promise((resolve) => silent.once('connect', resolve));
    running = undefined;
    const outcome = await Promise.race([
      f.server.stop().then(() => 'stopped'),
      new Promise((resolve) => setTimeout(resolve, 6_000, 'still waiting after 6 s')),
    ]);
    silent.destroy();
    assert.equal(outcome, 'stopped');
  });
});

describe('mailbox limits and POP3 locks', () => {
  test('housekeeping leaves a mailbox alone while a session has it open', async () => {
    const f = await setup();
    const c = await f.login();
    const limits = {
      mailboxes: f.store,
      locks: f.server.locks,
      config: () => resolveConfig({ mailbox: { retention: '1s' } }, 'test'),
      log: createLogger({ level: 'silent' }),
      now: () => new Date(Date.now() + 60_000),
    };
    assert.deepEqual(await enforceMailboxLimits(limits), { removed: 0, bytes: 0, busy: ['alice'] });
    assert.match(await c.command('QUIT'), /^\+OK/);
    await c.waitClosed();
    const report = await enforceMailboxLimits(limits);
    assert.equal(report.removed, 2);
    const next = await f.connect();
    assert.match(await next.command('USER alice'), /^\+OK/);
    assert.match(await next.command(`PASS ${PASSWORD}`), /^\+OK Mailbox alice has 0 messages/);
  });
});
