/** The pure intake parts: network policy, addresses, header fixing, limits, copy rules */
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import { test } from 'node:test';
import { resolveConfig } from '../../src/config/validate.js';
import { smtpReject } from '../../src/errors.js';
import { copyRecipients } from '../../src/intake/copies.js';
import { ClientLimits } from '../../src/intake/limits.js';
import { MessageFixer } from '../../src/intake/message-fixer.js';
import { NetworkPolicy } from '../../src/intake/policy.js';
import type { SizeRule } from '../../src/intake/size-limits.js';
import {
  MIN_DATA_RATE,
  STRESS_TIMEOUT_MS,
  bodyProgressed,
  giveWay,
  progressDeadlineMs,
  stalled,
  underStress,
  type SessionState,
} from '../../src/intake/pressure.js';
import { mailboxName, parseAddress } from '../../src/route/address.js';

test('network policy: IPv4, IPv6, IPv4-mapped IPv6, single addresses', () => {
  const policy = new NetworkPolicy([
    '192.168.0.0/16',
    'fc00::/7',
    '10.1.2.3',
    '::ffff:172.16.0.0/108',
  ]);
  assert.ok(policy.allows('192.168.1.20'));
  assert.ok(policy.allows('::ffff:192.168.1.20'), 'mapped address counts as IPv4');
  assert.ok(policy.allows('fd12::1'));
  assert.ok(policy.allows('10.1.2.3'));
  assert.ok(policy.allows('172.16.5.5'), 'mapped CIDR applies to IPv4');
  assert.ok(!policy.allows('10.1.2.4'));
  assert.ok(!policy.allows('8.8.8.8'));
  assert.ok(!policy.allows('2001:db8::1'));
  assert.ok(!policy.allows('not an ip'));
});

test('addresses: relay tricks are refused, not interpreted', () => {
  assert.deepEqual(parseAddress('Scan@Office.TEST'), { local: 'Scan', domain: 'office.test' });
  for (const trick of [
    '@a.test:b@c.test',
    'user%victim.test@relay.test',
    'a!b@relay.test',
    'noat',
    '@x.test',
    'a@',
    'a@b..c',
    'a@[1.2.3.4]x',
  ]) {
    assert.equal(parseAddress(trick), null, trick);
  }
  assert.ok(parseAddress('"quoted local"@relay.test'));
  assert.equal(mailboxName('Alice+Scans'), 'alice');
});

const sizeLimit = (bytes: number): SizeRule => ({
  bytes,
  refusal: (size) => smtpReject(552, '5.3.4', `Message is ${size} bytes`),
});

async function fix(input: string, maxBytes = 1_000_000): Promise<string> {
  const fixer = new MessageFixer({
    prepend: 'Received: test\r\n',
    missing: (has) =>
      (has.date ? '' : 'Date: D\r\n') + (has.messageId ? '' : 'Message-ID: <M>\r\n'),
    limit: sizeLimit(maxBytes),
  });
  return (await buffer(Readable.from([Buffer.from(input, 'latin1')]).pipe(fixer))).toString(
    'latin1',
  );
}

test('message fixer: Received first, Date and Message-ID only when missing, body untouched', async () => {
  assert.equal(
    await fix('Subject: a\r\n\r\nbody\r\n'),
    'Received: test\r\nSubject: a\r\nDate: D\r\nMessage-ID: <M>\r\n\r\nbody\r\n',
  );
  assert.equal(
    await fix('DATE: x\r\nmessage-id: <y>\r\n\r\n\xe9\r\n'),
    'Received: test\r\nDATE: x\r\nmessage-id: <y>\r\n\r\n\xe9\r\n',
  );
  assert.equal(
    await fix('Subject: only headers\r\n'),
    'Received: test\r\nSubject: only headers\r\nDate: D\r\nMessage-ID: <M>\r\n\r\n',
  );
  assert.equal(
    await fix('just text, no headers\r\n'),
    'Received: test\r\nDate: D\r\nMessage-ID: <M>\r\n\r\njust text, no headers\r\n',
  );
  assert.equal(
    await fix('\r\nbody only\r\n'),
    'Received: test\r\nDate: D\r\nMessage-ID: <M>\r\n\r\nbody only\r\n',
  );
});

test('message fixer: a bare CR or NUL in a header is a space, never a line break; the body is left alone', async () => {
  assert.equal(
    await fix(
      'Subject: a\r\nX-Inj: a\rBcc: x@evil.test\r\nX-Nul: b\0c\r\nX-End: d\r\r\n\r\nbody\rstays\r\n',
    ),
    'Received: test\r\nSubject: a\r\nX-Inj: a Bcc: x@evil.test\r\nX-Nul: b c\r\nX-End: d \r\nDate: D\r\nMessage-ID: <M>\r\n\r\nbody\rstays\r\n',
  );
  // A Date smuggled behind a bare CR is not a Date field: ours is still added
  assert.match(
    await fix('Subject: a\rDate: never\r\n\r\nb\r\n'),
    /^Received: test\r\nSubject: a Date: never\r\nDate: D\r\n/,
  );
});

test('message fixer: headers split across many chunks', async () => {
  const fixer = new MessageFixer({
    prepend: 'R: 1\r\n',
    missing: () => 'Date: D\r\n',
    limit: sizeLimit(1000),
  });
  const text = 'Subject: split\r\nX: y\r\n\r\nbody\r\n';
  const out = await buffer(Readable.from([...text].map((c) => Buffer.from(c))).pipe(fixer));
  assert.equal(out.toString(), 'R: 1\r\nSubject: split\r\nX: y\r\nDate: D\r\n\r\nbody\r\n');
});

test('message fixer: over the limit fails with 552 after reading everything', async () => {
  await assert.rejects(
    fix(`Subject: big\r\n\r\n${'x'.repeat(2000)}`, 1000),
    (err: Error & { smtpCode?: number }) =>
      err.smtpCode === 552 && err.message === 'Message is 2016 bytes',
  );
});

test('client limits: messages per minute', () => {
  const limits = new ClientLimits();
  assert.ok(limits.takeMessage('a', 2, 0));
  assert.ok(limits.takeMessage('a', 2, 1000));
  assert.ok(!limits.takeMessage('a', 2, 2000));
  assert.ok(limits.takeMessage('a', 2, 60_500), 'the window slides');
});

test('message rate: a high limit over many minutes counts exactly, and idle clients are forgotten', () => {
  const limits = new ClientLimits();
  // 10 messages a second against a limit of 500 a minute: the first 50 s fill the window,
  // after that one message leaves the window for each that enters it
  let refused = 0;
  for (let i = 0; i < 3000; i++) if (!limits.takeMessage('busy', 500, i * 100)) refused++;
  assert.equal(refused, 5 * 100, 'in each of the five minutes, 500 taken and 100 refused');
  limits.takeMessage('once', 5, 250_000);
  limits.prune(299_999);
  assert.equal(limits.clients, 2, 'the busy client sent within the minute');
  limits.prune(300_000);
  assert.equal(limits.clients, 2, 'swept at most once a second');
  limits.prune(361_000);
  assert.equal(limits.clients, 0, 'a client silent for a minute is forgotten');
  assert.ok(limits.takeMessage('busy', 1, 361_000), 'and starts afresh');
});

test('copy rules match by sender and network, only for existing mailboxes, never twice', () => {
  const config = resolveConfig(
    {
      mailbox: {
        localDomains: ['box.lan'],
        copies: [
          { mailbox: 'archive' },
          { mailbox: 'scans', senders: ['@printers.lan'], networks: ['10.0.0.0/8'] },
          { mailbox: 'gone' },
        ],
      },
    },
    'test',
  );
  const exists = (name: string) => name !== 'gone';
  assert.deepEqual(
    copyRecipients(
      config,
      { from: 'mfp@printers.lan', client: '10.1.1.1', recipients: ['x@example.com'] },
      exists,
    ),
    ['archive@box.lan', 'scans@box.lan'],
  );
  assert.deepEqual(
    copyRecipients(
      config,
      { from: 'mfp@printers.lan', client: '192.168.1.1', recipients: [] },
      exists,
    ),
    ['archive@box.lan'],
  );
  assert.deepEqual(
    copyRecipients(
      config,
      { from: 'a@b.lan', client: '10.1.1.1', recipients: ['ARCHIVE@box.lan'] },
      exists,
    ),
    [],
  );
});

test('message fixer: an empty header section split across chunks, and a long one', async () => {
  const run = async (parts: string[]) => {
    const fixer = new MessageFixer({
      prepend: 'R: 1\r\n',
      missing: () => 'Date: D\r\n',
      limit: sizeLimit(10_000_000),
    });
    return (await buffer(Readable.from(parts.map((p) => Buffer.from(p))).pipe(fixer))).toString();
  };
  assert.equal(await run(['\r', '\nbody\r\n']), 'R: 1\r\nDate: D\r\n\r\nbody\r\n');
  const many = Array.from({ length: 5000 }, (_, i) => `X-H${i}: ${'v'.repeat(60)}\r\n`);
  const out = await run([...many, '\r\nbody\r\n']);
  assert.ok(out.startsWith('R: 1\r\nX-H0: '));
  assert.ok(out.endsWith('\r\nbody\r\n'));
  assert.ok(!out.includes('Date: D'), 'over 256 KB of headers pass through unedited');
});

const session = (
  id: string,
  client: string,
  lastProgress: number,
  state: Partial<SessionState> = {},
): SessionState => ({
  id,
  client,
  lastProgress,
  inTransaction: false,
  awaitingReply: false,
  ...state,
});

test('pressure: stress from 80% of the connection limit shortens the progress deadline to 10 s, never lengthens it', () => {
  assert.ok(!underStress(79, 100));
  assert.ok(underStress(80, 100));
  assert.ok(underStress(3, 3), 'a tiny limit is under stress when full');
  assert.equal(
    progressDeadlineMs(79, 100, 300_000),
    300_000,
    'smtp.idleTimeout with room to spare',
  );
  assert.equal(progressDeadlineMs(100, 100, 300_000), STRESS_TIMEOUT_MS);
  assert.equal(
    progressDeadlineMs(100, 100, 3_000),
    3_000,
    'an idle timeout shorter than the stress one stays',
  );
});

test('pressure: a session stalls when it made no progress within the deadline, unless it waits for our reply', () => {
  const sessions = [
    session('chatty', 'a', 0),
    session('fresh', 'a', 9_000),
    session('fsync-wait', 'b', 0, { inTransaction: true, awaitingReply: true }),
    session('mail-then-noop', 'c', 1_000, { inTransaction: true }),
  ];
  assert.deepEqual(
    stalled(sessions, 10_000, 10_000).map((s) => s.id),
    ['chatty'],
  );
  assert.deepEqual(
    stalled(sessions, 11_000, 10_000).map((s) => s.id),
    ['chatty', 'mail-then-noop'],
    'a transaction that stopped moving is bounded too',
  );
  assert.deepEqual(stalled(sessions, 10_000, 20_000), []);
});

test('pressure: to make room, the client holding the most connections gives way, its longest-idle session first', () => {
  const sessions = [
    session('device', 'printer', 0),
    session('flood-new', 'flood', 500),
    session('flood-old', 'flood', 100),
    session('flood-busy', 'flood', 0, { inTransaction: true }),
    session('other', 'nas', 50),
    session('other-2', 'nas', 60),
  ];
  assert.equal(
    giveWay(sessions)?.id,
    'flood-old',
    'the device idle longest still keeps its one connection',
  );
  assert.equal(
    giveWay(sessions.filter((s) => s.client !== 'flood'))?.id,
    'other',
    'ties in count go to the longest idle',
  );
  assert.equal(
    giveWay([
      session('a', 'x', 0, { inTransaction: true }),
      session('b', 'y', 0, { inTransaction: true, awaitingReply: true }),
    ]),
    undefined,
    'a message in progress is never closed to make room',
  );
  assert.equal(giveWay([]), undefined);
});

test('pressure: a message body is progress only at MIN_DATA_RATE or faster', () => {
  assert.equal(MIN_DATA_RATE, 500);
  assert.ok(bodyProgressed(64 * 1024, 1_000), 'a scanner on slow Wi-Fi');
  assert.ok(bodyProgressed(500, 1_000));
  assert.ok(!bodyProgressed(499, 1_000));
  assert.ok(!bodyProgressed(3, 1_000), 'a byte every few hundred ms is a trickle');
  assert.ok(!bodyProgressed(0, 0), 'nothing is never progress');
  assert.ok(bodyProgressed(1, 0), 'bytes at once are');
});
