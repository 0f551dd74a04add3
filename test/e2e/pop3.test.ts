/**
 * POP3 end to end: the real relay process, mail arriving over SMTP, and
 * mailboxes read by clients nobody here wrote: Python's poplib, curl's
 * pop3:// and fetchmail (STLS, verifying the generated certificate).
 */
import assert from 'node:assert/strict';
import {
  chmodSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  writeFileSync,
} from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { makeCerts } from '../support/certs.js';
import { python, run, smtplibSend } from '../support/clients.js';
import { RawPop3 } from '../support/pop3.js';
import { launchRelay, type RunningRelay } from '../support/relay.js';
import { startUpstream, type Upstream } from '../support/upstream.js';

/**
 * One poplib session doing `ops` in order; prints a JSON array of results.
 * A -ERR ends the plan and is recorded as {"error": "..."}.
 */
const POPLIB = `
import json, poplib, ssl, sys
port, user, password, ops = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4:]
dec = lambda b: b.decode('latin1')
out = []
p = poplib.POP3('127.0.0.1', port, timeout=20)
try:
    for op in ops:
        name, *args = op.split('|')
        if name == 'login':
            p.user(user); out.append(dec(p.pass_(password)))
        elif name == 'stls':
            p.stls(ssl.create_default_context(cafile=args[0])); out.append(p.sock.version())
        elif name == 'stat':
            out.append(list(p.stat()))
        elif name == 'list':
            out.append([dec(l) for l in p.list()[1]])
        elif name == 'uidl':
            out.append([dec(l).split(' ')[1] for l in p.uidl()[1]])
        elif name == 'retr':
            out.append('\\n'.join(dec(l) for l in p.retr(int(args[0]))[1]))
        elif name == 'top':
            out.append([dec(l) for l in p.top(int(args[0]), int(args[1]))[1]])
        elif name == 'dele':
            out.append(dec(p.dele(int(args[0]))))
        elif name == 'quit':
            out.append(dec(p.quit()))
        elif name == 'drop':
            p.sock.close(); out.append('dropped')
except poplib.error_proto as e:
    out.append({'error': dec(e.args[0])})
print(json.dumps(out))
`;

type PopResult = string | string[] | number[] | { error: string };

async function poplib(
  port: number,
  user: string,
  password: string,
  ops: string[],
): Promise<PopResult[]> {
  const result = await python(POPLIB, [String(port), user, password, ...ops]);
  assert.equal(result.code, 0, `poplib failed: ${result.stderr}`);
  return JSON.parse(result.stdout) as PopResult[];
}

/** Sends a message over SMTP to a local mailbox and waits until it is in the mailbox */
async function deliverLocal(
  relay: RunningRelay,
  to: string,
  subject: string,
  body: string,
): Promise<void> {
  const already = relay.logs.filter((l) => l.msg === 'Recipient local' && l.rcpt === to).length;
  const message = `From: scanner@office.test\r\nTo: ${to}\r\nSubject: ${subject}\r\n\r\n${body}`;
  assert.match(await smtplibSend(relay.smtpPort, 'scanner@office.test', [to], message), /^250 /);
  await relay.waitForLog(
    () => relay.logs.filter((l) => l.msg === 'Recipient local' && l.rcpt === to).length > already,
  );
}

async function addMailbox(relay: RunningRelay, name: string, password: string): Promise<void> {
  const result = await relay.cli(['mailbox', 'add', name, '--password-stdin'], `${password}\n`);
  assert.equal(result.code, 0, result.stderr);
}

/**
 * A fetchmail configuration for one mailbox (STLS, the relay's generated
 * certificate verified, each message into its own file in outDir) and a run of it
 */
function fetchmailSetup(relay: RunningRelay, user: string, password: string, options: string[]) {
  const home = mkdtempSync(path.join(tmpdir(), 'edge-relay-fetchmail-'));
  const outDir = path.join(home, 'out');
  mkdirSync(outDir);
  const rc = path.join(home, 'fetchmailrc');
  writeFileSync(
    rc,
    [
      'set no syslog',
      `poll relay.test via 127.0.0.1 port ${relay.pop3Port} protocol pop3 uidl`,
      `  user "${user}" there with password "${password}" is "root" here ${options.join(' ')}`,
      `  sslproto "auto" sslcertck sslcertfile "${path.join(relay.dataDir, 'tls/pop3.crt')}" sslcommonname "relay.test"`,
      `  mda "/bin/sh -c 'cat > ${outDir}/msg.$$'"`,
      '',
    ].join('\n'),
  );
  chmodSync(rc, 0o600);
  const fetched = () =>
    readdirSync(outDir).map((file) => readFileSync(path.join(outDir, file), 'utf8'));
  return {
    fetched,
    run: () =>
      run('fetchmail', ['-f', rc, '-N', '-v'], {
        env: { ...process.env, FETCHMAILHOME: home },
        timeoutMs: 60_000,
      }),
  };
}

/** The relay process's peak resident memory so far (VmHWM) */
function peakRssBytes(relay: RunningRelay): number {
  const status = readFileSync(`/proc/${relay.process.pid}/status`, 'utf8');
  return Number(/^VmHWM:\s+(\d+) kB/m.exec(status)?.[1]) * 1024;
}

/** A message of `blocks` x 100 lines of 100 octets; the first line of each block starts with a dot */
function bigMessage(blocks: number): Buffer {
  const line = `${'x'.repeat(98)}\r\n`;
  return Buffer.from(`Subject: big scan\r\n\r\n${`.${line}${line.repeat(99)}`.repeat(blocks)}`);
}

const BODY = 'Scan attached.\r\n.leading dot line\r\nsecond line\r\nthird line\r\n';

describe('POP3 with real clients', () => {
  let relay: RunningRelay;

  before(async () => {
    relay = await launchRelay();
    for (const [name, password] of [
      ['alice', 'alice-secret-1'],
      ['bob', 'bob-secret-22'],
      ['carol', 'carol-secret-3'],
      ['dave', 'dave-secret-44'],
    ] as const)
      await addMailbox(relay, name, password);
  });
  after(async () => {
    await relay.stop();
  });

  test('the relay logs its POP3 address', () => {
    assert.ok(relay.pop3Port && relay.pop3Port > 0);
  });

  test('poplib: logs in, lists, fetches, reads TOP, deletes at QUIT; UIDL is stable across sessions', async () => {
    await deliverLocal(relay, 'alice@relay.test', 'Scan 1', BODY);
    await deliverLocal(relay, 'Alice+scans@relay.test', 'Scan 2', BODY);
    const [login, stat, list, uidl, retr, top, dele, quit] = await poplib(
      relay.pop3Port!,
      'alice',
      'alice-secret-1',
      ['login', 'stat', 'list', 'uidl', 'retr|1', 'top|2|1', 'dele|1', 'quit'],
    );
    assert.match(String(login), /^\+OK Mailbox alice has 2 messages/);
    const sizes = (list as string[]).map((line) => Number(line.split(' ')[1]));
    assert.deepEqual(stat, [2, sizes[0]! + sizes[1]!]);
    assert.equal((uidl as string[]).length, 2);
    assert.match(String(retr), /^Received: from .+\n\tby relay\.test \(edge-relay\)/);
    assert.match(String(retr), /\nSubject: Scan 1\n/);
    assert.ok(
      String(retr).endsWith('\n\nScan attached.\n.leading dot line\nsecond line\nthird line'),
      `body unstuffed by the client: ${String(retr)}`,
    );
    const topLines = top as string[];
    assert.ok(topLines.includes('Subject: Scan 2'));
    assert.deepEqual(
      topLines.slice(topLines.indexOf('')),
      ['', 'Scan attached.'],
      'the header, the blank line and 1 body line',
    );
    assert.match(String(dele), /^\+OK/);
    assert.match(String(quit), /^\+OK .*1 messages deleted/);
    const [, statAfter, uidlAfter] = await poplib(relay.pop3Port!, 'alice', 'alice-secret-1', [
      'login',
      'stat',
      'uidl',
      'quit',
    ]);
    assert.deepEqual((statAfter as number[])[0], 1);
    assert.deepEqual(uidlAfter, [(uidl as string[])[1]], 'the remaining message keeps its UIDL');
  });

  test('curl pop3://: lists, fetches and deletes', async () => {
    await deliverLocal(
      relay,
      'bob@relay.test',
      'UPS alarm',
      'On battery since 10:02\r\n..two dots\r\n',
    );
    const url = `pop3://127.0.0.1:${relay.pop3Port}`;
    const auth = ['-sS', '--max-time', '20', '-u', 'bob:bob-secret-22'];
    const listing = await run('curl', [...auth, `${url}/`]);
    assert.equal(listing.code, 0, listing.stderr);
    assert.match(listing.stdout, /^1 \d+\r\n$/);
    const fetched = await run('curl', [...auth, `${url}/1`]);
    assert.equal(fetched.code, 0, fetched.stderr);
    assert.match(fetched.stdout, /\r\nSubject: UPS alarm\r\n/);
    assert.ok(
      fetched.stdout.endsWith('\r\n\r\nOn battery since 10:02\r\n..two dots\r\n'),
      fetched.stdout,
    );
    const deleted = await run('curl', [...auth, `${url}/1`, '-X', 'DELE', '-I']);
    assert.equal(deleted.code, 0, deleted.stderr);
    const after = await run('curl', [...auth, `${url}/`]);
    assert.equal(after.code, 0, after.stderr);
    assert.equal(after.stdout.trim(), '', 'the mailbox is empty');
  });

  test('fetchmail: STLS with the generated certificate verified, fetches every message and deletes it', async () => {
    await deliverLocal(relay, 'carol@relay.test', 'Alert 1', 'Toner low\r\n');
    await deliverLocal(relay, 'carol@relay.test', 'Alert 2', 'Paper jam\r\n');
    const fetchmail = fetchmailSetup(relay, 'carol', 'carol-secret-3', []);
    const result = await fetchmail.run();
    const transcript = result.stdout + result.stderr;
    assert.equal(result.code, 0, transcript);
    assert.match(transcript, /POP3> STLS/);
    assert.match(transcript, /upgrade to TLS succeeded/);
    const bodies = fetchmail.fetched();
    assert.equal(bodies.length, 2);
    assert.ok(bodies.some((b) => b.includes('Subject: Alert 1') && b.includes('Toner low')));
    assert.ok(bodies.some((b) => b.includes('Subject: Alert 2') && b.includes('Paper jam')));
    const [, stat] = await poplib(relay.pop3Port!, 'carol', 'carol-secret-3', [
      'login',
      'stat',
      'quit',
    ]);
    assert.deepEqual(stat, [0, 0], 'fetchmail deleted what it fetched');
  });

  test('fetchmail with keep: a second run fetches nothing again (UIDL), a third only the new message', async () => {
    await deliverLocal(relay, 'carol@relay.test', 'Kept 1', 'first\r\n');
    await deliverLocal(relay, 'carol@relay.test', 'Kept 2', 'second\r\n');
    const fetchmail = fetchmailSetup(relay, 'carol', 'carol-secret-3', ['keep']);
    const first = await fetchmail.run();
    assert.equal(first.code, 0, first.stdout + first.stderr);
    assert.equal(fetchmail.fetched().length, 2);
    const second = await fetchmail.run();
    assert.equal(second.code, 1, `fetchmail's "no mail" exit: ${second.stdout}${second.stderr}`);
    assert.equal(fetchmail.fetched().length, 2, 'nothing fetched twice');
    await deliverLocal(relay, 'carol@relay.test', 'Kept 3', 'third\r\n');
    const third = await fetchmail.run();
    assert.equal(third.code, 0, third.stdout + third.stderr);
    const bodies = fetchmail.fetched();
    assert.equal(bodies.length, 3);
    assert.equal(bodies.filter((b) => b.includes('Subject: Kept 3')).length, 1);
    const [, stat] = await poplib(relay.pop3Port!, 'carol', 'carol-secret-3', [
      'login',
      'stat',
      'quit',
    ]);
    assert.equal((stat as number[])[0], 3, 'keep left every message on the server');
  });

  test('DELE without QUIT keeps the message', async () => {
    const [, before] = await poplib(relay.pop3Port!, 'alice', 'alice-secret-1', [
      'login',
      'stat',
      'dele|1',
      'drop',
    ]);
    assert.equal((before as number[])[0], 1);
    const [, after] = await poplib(relay.pop3Port!, 'alice', 'alice-secret-1', [
      'login',
      'stat',
      'quit',
    ]);
    assert.deepEqual(after, before);
  });

  test('two concurrent logins to one mailbox: the second is refused with [IN-USE]', async () => {
    const result = await python(
      `
import poplib, sys
port = int(sys.argv[1])
first = poplib.POP3('127.0.0.1', port, timeout=20); first.user('alice'); first.pass_('alice-secret-1')
second = poplib.POP3('127.0.0.1', port, timeout=20); second.user('alice')
try:
    second.pass_('alice-secret-1'); print('second login accepted')
except poplib.error_proto as e:
    print(e.args[0].decode())
first.quit()
second.user('alice'); print(second.pass_('alice-secret-1').decode()); second.quit()
`,
      [String(relay.pop3Port)],
    );
    const [refused, later] = result.stdout.trim().split('\n');
    assert.match(
      refused ?? '',
      /^-ERR \[IN-USE\] Mailbox "alice" is open in another session/,
      result.stderr,
    );
    assert.match(
      later ?? '',
      /^\+OK Mailbox alice has 1 messages/,
      'after the first session ends the mailbox opens',
    );
  });

  test('STLS upgrades (certificate verified with the generated cert) and the session continues', async () => {
    const cafile = path.join(relay.dataDir, 'tls/pop3.crt');
    const [tls, login, stat] = await poplib(relay.pop3Port!, 'alice', 'alice-secret-1', [
      `stls|${cafile}`,
      'login',
      'stat',
      'quit',
    ]);
    assert.match(String(tls), /^TLSv1\.[23]$/);
    assert.match(String(login), /^\+OK Mailbox alice/);
    assert.equal((stat as number[])[0], 1);
  });

  test('a wrong password gets -ERR [AUTH]', async () => {
    const [result] = await poplib(relay.pop3Port!, 'alice', 'not-the-password', ['login']);
    assert.deepEqual(result, { error: '-ERR [AUTH] Wrong mailbox name or password' });
    assert.ok(!relay.output().includes('not-the-password'), 'the password is not logged');
  });

  test('garbage, huge lines and unknown commands get -ERR and the server lives on', async () => {
    const raw = await RawPop3.connect(relay.pop3Port!);
    try {
      assert.match(await raw.line(), /^\+OK/);
      assert.match(await raw.command('A'.repeat(200_000)), /^-ERR Line longer than/);
      raw.write(Buffer.from([0x00, 0xff, 0x16, 0x03, 0x01, 0x0d, 0x0a]));
      assert.match(await raw.line(), /^-ERR Unknown command/);
      assert.match(await raw.command('XYZZY'), /^-ERR Unknown command "XYZZY"/);
      assert.match(await raw.command('USER alice'), /^\+OK/);
    } finally {
      raw.close();
    }
    const [login] = await poplib(relay.pop3Port!, 'dave', 'dave-secret-44', ['login', 'quit']);
    assert.match(String(login), /^\+OK Mailbox dave has 0 messages/);
  });

  test('a 10 MB message full of dotted lines arrives intact through poplib', async () => {
    const body = bigMessage(1_000);
    writeFileSync(path.join(relay.dataDir, 'mailboxes/dave/new', 'zzzzzzzz.big10mb'), body);
    const result = await python(
      `
import poplib, sys
p = poplib.POP3('127.0.0.1', int(sys.argv[1]), timeout=60)
p.user('dave'); p.pass_('dave-secret-44')
resp, lines, octets = p.retr(1)
print(resp.decode(), '|', octets, sum(len(l) + 2 for l in lines), len(lines))
p.dele(1); p.quit()
`,
      [String(relay.pop3Port)],
    );
    assert.equal(result.code, 0, result.stderr);
    const [status, numbers = ''] = result.stdout.trim().split(' | ');
    const [octets, unstuffed, count] = numbers.split(' ').map(Number);
    assert.equal(status, `+OK ${body.length} octets`, 'the announced size is exact');
    assert.equal(unstuffed, body.length, 'every byte arrived, dot-stuffing undone');
    assert.equal(octets, body.length, 'poplib counts the same octets');
    assert.equal(count, 2 + 100 * 1_000);
  });

  test("RETR of a 100 MB message streams: the relay's peak memory grows by far less than the message", async (t) => {
    const blocks = 10_000;
    const body = bigMessage(blocks);
    writeFileSync(path.join(relay.dataDir, 'mailboxes/dave/new', 'zzzzzzzz.big100mb'), body);
    const peakBefore = peakRssBytes(relay);
    const expected = [
      '+OK edge-relay POP3 server ready\r\n',
      '+OK Send the password of dave\r\n',
      `+OK Mailbox dave has 1 messages (${body.length} octets)\r\n`,
      `+OK ${body.length} octets\r\n`,
    ].join('');
    const trailer =
      '.\r\n+OK Message 1 marked for deletion at QUIT\r\n+OK edge-relay signing off (1 messages deleted)\r\n';
    const received = await new Promise<{ bytes: number; tail: string }>((resolve, reject) => {
      const socket = net.connect(relay.pop3Port!, '127.0.0.1');
      let bytes = 0;
      let tail = '';
      socket.on('data', (chunk: Buffer) => {
        bytes += chunk.length;
        tail = (tail + chunk.subarray(-200).toString('latin1')).slice(-200);
      });
      socket.on('close', () => resolve({ bytes, tail }));
      socket.on('error', reject);
      socket.setTimeout(60_000, () => socket.destroy(new Error('RETR took over 60 s')));
      socket.write('USER dave\r\nPASS dave-secret-44\r\nRETR 1\r\nDELE 1\r\nQUIT\r\n');
    });
    assert.equal(
      received.bytes,
      expected.length + body.length + blocks + trailer.length,
      'every byte, one stuffed dot per dotted line, then the terminator',
    );
    assert.ok(received.tail.endsWith(`x\r\n${trailer}`), received.tail);
    const grown = peakRssBytes(relay) - peakBefore;
    t.diagnostic(
      `relay peak RSS grew by ${(grown / 1048576).toFixed(1)} MB during RETR of ${(body.length / 1048576).toFixed(1)} MB`,
    );
    assert.ok(
      grown < body.length / 2,
      `peak RSS grew by ${(grown / 1048576).toFixed(1)} MB for a ${(body.length / 1048576).toFixed(0)} MB message`,
    );
  });

  test('UIDLs and messages survive a relay restart', async () => {
    const [, before] = await poplib(relay.pop3Port!, 'alice', 'alice-secret-1', [
      'login',
      'uidl',
      'quit',
    ]);
    assert.equal(await relay.stop(), 0);
    relay = await launchRelay({ dir: relay.dir });
    const [, after, retr] = await poplib(relay.pop3Port!, 'alice', 'alice-secret-1', [
      'login',
      'uidl',
      'retr|1',
      'quit',
    ]);
    assert.deepEqual(after, before);
    assert.match(String(retr), /Subject: Scan 2/);
    assert.equal(
      relay.logs.filter((l) => l.msg === 'Generated a self-signed TLS certificate').length,
      0,
      'the certificate was reused',
    );
  });
});

describe('bounces in the postmaster mailbox', () => {
  let upstream: Upstream;
  let relay: RunningRelay;

  before(async () => {
    upstream = await startUpstream({
      rcptReply: (address) =>
        address === 'nobody@example.com'
          ? [550, '5.1.1 <nobody@example.com>: No such user here']
          : undefined,
    });
    relay = await launchRelay({
      config: {
        delivery: {
          mode: 'smarthost',
          smarthost: { host: '127.0.0.1', port: upstream.port, security: 'starttls' },
          tls: { verify: true, caFile: makeCerts().caFile },
        },
      },
    });
    const result = await relay.cli(
      ['mailbox', 'password', 'postmaster', '--password-stdin'],
      'postmaster-pw-9\n',
    );
    assert.equal(result.code, 0, result.stderr);
  });
  after(async () => {
    await relay.stop();
    await upstream.close();
  });

  test('a recipient the smarthost rejects with 550 produces a bounce readable over POP3', async () => {
    const message =
      'From: copier@office.test\r\nTo: nobody@example.com\r\nSubject: Scan for nobody\r\n\r\nhello\r\n';
    assert.match(
      await smtplibSend(relay.smtpPort, 'copier@office.test', ['nobody@example.com'], message),
      /^250 /,
    );
    await relay.waitForLog(
      (l) => l.msg === 'Recipient local' && l.rcpt === 'postmaster@relay.test',
      30_000,
    );
    const [login, retr] = await poplib(relay.pop3Port!, 'postmaster', 'postmaster-pw-9', [
      'login',
      'retr|1',
      'quit',
    ]);
    assert.match(String(login), /^\+OK Mailbox postmaster has 1 messages/);
    const report = String(retr);
    assert.match(report, /nobody@example\.com/);
    assert.match(report, /550/);
    assert.match(report, /Subject: Scan for nobody/, 'the original headers are included');
  });
});
