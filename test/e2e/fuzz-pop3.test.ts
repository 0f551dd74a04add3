/**
 * Hostile input on the POP3 listener: thousands of seeded random sessions
 * (FUZZ_POP3_SESSIONS, default 2000; `make soak` runs 10,000). Afterwards the relay
 * is alive, its memory is back near where it started, every reply was a
 * well-formed POP3 reply, no session that hung up without QUIT removed
 * anything, a mailbox held by another session was never opened twice, and
 * Python's poplib still logs in and reads every message.
 */
import assert from 'node:assert/strict';
import { randomBytes, scryptSync } from 'node:crypto';
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { python } from '../support/clients.js';
import { rssKb } from '../support/faults.js';
import { eventually } from '../support/wait.js';
import { rssBackNearBaseline } from '../support/memory.js';
import { Rng, assertSurvived, play, reportIfExited } from '../support/fuzz.js';
import { RawPop3 } from '../support/pop3.js';
import {
  pop3Session,
  readPop3Replies,
  type Pop3Account,
  type Pop3Targets,
} from '../support/pop3-fuzz.js';
import { launchRelay, type RunningRelay } from '../support/relay.js';

const SESSIONS = Number(process.env.FUZZ_POP3_SESSIONS ?? process.env.FUZZ_SESSIONS ?? 2000);
const SEED = Number(process.env.FUZZ_SEED ?? 20261127);
const CONCURRENCY = 128;
const BIG = 1536 * 1024;

const account = (name: string): Pop3Account => ({ name, password: `${name}-secret-pw` });
const TARGETS: Pop3Targets = {
  quitting: ['fuzz-1', 'fuzz-2', 'fuzz-3'].map(account),
  dropping: ['keep-1', 'keep-2', 'keep-3'].map(account),
  locked: account('locked'),
  decoy: account('decoy'),
};
/** The mailboxes with mail in them */
const ALL = [...TARGETS.quitting, ...TARGETS.dropping, TARGETS.locked];

/** Small, big (still streaming when the client hangs up) and dotted (dot-stuffing) messages */
function messagesFor(name: string): string[] {
  const small = (i: number) =>
    `Subject: ${name} message ${i}\r\n\r\nHello ${i} from the fuzz setup\r\n`;
  if (!name.startsWith('keep-'))
    return Array.from({ length: name === 'locked' ? 2 : 12 }, (_, i) => small(i + 1));
  const line = `${'x'.repeat(76)}\r\n`;
  return [
    small(1),
    `Subject: big\r\n\r\n${line.repeat(Math.ceil(BIG / line.length))}`,
    'Subject: dots\r\n\r\n.\r\n..\r\n.hidden\r\n+OK not a reply\r\n-ERR not either\r\nend\r\n',
  ];
}

/** Every message in one SMTP session (smtplib): [rcpt, message] pairs as JSON on stdin */
const SEND_MANY = `
import json, smtplib, sys
items = json.load(sys.stdin)
with smtplib.SMTP('127.0.0.1', int(sys.argv[1]), timeout=60) as s:
    for rcpt, msg in items:
        s.sendmail('setup@office.test', [rcpt], msg.encode())
`;

/** poplib logs in, lists and fetches everything, and quits without deleting */
const POPLIB_READ = `
import json, poplib, sys
p = poplib.POP3('127.0.0.1', int(sys.argv[1]), timeout=30)
p.user(sys.argv[2]); p.pass_(sys.argv[3])
sizes = [int(l.split()[1]) for l in p.list()[1]]
uids = [l.split()[1].decode() for l in p.uidl()[1]]
got = [sum(len(l) + 2 for l in p.retr(i + 1)[1]) for i in range(len(sizes))]
p.quit()
print(json.dumps({'sizes': sizes, 'uids': uids, 'retrieved': got}))
`;

interface PoplibRead {
  sizes: number[];
  uids: string[];
  retrieved: number[];
}

async function poplibRead(port: number, who: Pop3Account): Promise<PoplibRead> {
  const result = await python(POPLIB_READ, [String(port), who.name, who.password]);
  assert.equal(result.code, 0, `poplib failed for ${who.name}: ${result.stderr}`);
  return JSON.parse(result.stdout) as PoplibRead;
}

/**
 * Cheap password hashes (scrypt N=256 instead of 16384), written in the stored form the relay reads and
 * verifies like any other: thousands of logins then cost seconds, not minutes, on a small box. The login
 * code path is the same; only the work factor in the hash differs.
 */
function useCheapHashes(relay: RunningRelay, accounts: readonly Pop3Account[]): void {
  const file = path.join(relay.dataDir, 'mailboxes', 'users.json');
  const users = JSON.parse(readFileSync(file, 'utf8')) as Record<string, { hash: string }>;
  for (const { name, password } of accounts) {
    const salt = randomBytes(16);
    const key = scryptSync(password.normalize('NFC'), salt, 32, { N: 256, r: 8, p: 1 });
    users[name] = {
      ...users[name],
      hash: `scrypt$256$8$1$${salt.toString('base64')}$${key.toString('base64')}`,
    };
  }
  writeFileSync(file, JSON.stringify(users, null, 2), { mode: 0o600 });
}

const uidsOnDisk = (relay: RunningRelay, name: string): string[] =>
  readdirSync(path.join(relay.dataDir, 'mailboxes', name, 'new')).sort();

/** A distinct loopback source address per session, so one session's failed logins never slow another (the throttle is per address) */
const sourceAddress = (index: number) =>
  `127.${1 + Math.floor(index / 62_500)}.${Math.floor(index / 250) % 250}.${1 + (index % 250)}`;

interface Tally {
  sessions: number;
  lines: number;
  hung: number;
  inUse: number;
  lockedLogins: number;
  problems: string[];
  deleted: Map<string, number>;
}

async function storm(port: number, tally: Tally): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < SESSIONS) {
      const index = next++;
      const plan = pop3Session(new Rng(SEED + index), TARGETS, { hugeLine: 0.01 });
      const dropAfterMs = plan.ending.kind === 'drop' ? plan.ending.afterMs : undefined;
      const result = await play(port, plan.chunks, {
        closeWaitMs: 15_000,
        localAddress: sourceAddress(index),
        ...(dropAfterMs === undefined ? {} : { dropAfterMs }),
      });
      const reading = readPop3Replies(result.raw);
      tally.sessions++;
      tally.lines += reading.lines;
      tally.inUse += reading.inUse;
      if (plan.mailbox === TARGETS.locked.name) tally.lockedLogins += reading.logins;
      tally.deleted.set(plan.mailbox, (tally.deleted.get(plan.mailbox) ?? 0) + reading.deleted);
      const problems = [...reading.problems];
      if (plan.ending.kind === 'quit') {
        if (result.hung) {
          tally.hung++;
          if (tally.problems.length < 20)
            tally.problems.push(
              `session ${index}: still open 15 s after QUIT; the last it heard: ${JSON.stringify(result.raw.subarray(-300).toString('latin1'))}`,
            );
        }
        if (!reading.complete)
          problems.push('a reply was cut off although the client waited for the server to close');
      }
      for (const problem of problems)
        if (tally.problems.length < 20)
          tally.problems.push(`session ${index} (seed ${SEED + index}): ${problem}`);
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
}

describe(`POP3 fuzzing: ${SESSIONS} hostile sessions (seed ${SEED})`, () => {
  let relay: RunningRelay;
  let holder: RawPop3;
  let keepAlive: NodeJS.Timeout | undefined;
  let lastKeepAlive: Promise<unknown> = Promise.resolve();
  const before_ = new Map<string, string[]>();
  const tally: Tally = {
    sessions: 0,
    lines: 0,
    hung: 0,
    inUse: 0,
    lockedLogins: 0,
    problems: [],
    deleted: new Map(),
  };
  let baselineKb = 0;

  before(async () => {
    relay = await launchRelay({ config: { pop3: { maxConnections: 200, idleTimeout: '10s' } } });
    for (const who of [...ALL, TARGETS.decoy]) {
      const added = await relay.cli(
        ['mailbox', 'add', who.name, '--password-stdin'],
        `${who.password}\n`,
      );
      assert.equal(added.code, 0, added.stderr);
    }
    useCheapHashes(relay, [...ALL, TARGETS.decoy]);
    const items = ALL.flatMap((who) =>
      messagesFor(who.name).map((message) => [`${who.name}@relay.test`, message]),
    );
    const sent = await python(SEND_MANY, [String(relay.smtpPort)], JSON.stringify(items));
    assert.equal(sent.code, 0, sent.stderr);
    for (const who of ALL) {
      const uids = await eventually(`${who.name} filled`, () => {
        const found = uidsOnDisk(relay, who.name);
        return found.length === messagesFor(who.name).length ? found : undefined;
      });
      before_.set(who.name, uids);
    }
    // Warm up every path once so the baseline includes what any served session loads
    for (const who of TARGETS.dropping) await poplibRead(relay.pop3Port!, who);
    // A name that does not exist costs a full-strength scrypt (so its timing tells nothing), on every worker thread at once
    await Promise.all(
      Array.from({ length: 8 }, (_, i) =>
        play(relay.pop3Port!, [Buffer.from(`USER nobody-${i}\r\nPASS x\r\nQUIT\r\n`)], {
          closeWaitMs: 15_000,
          localAddress: `127.254.0.${i + 1}`,
        }),
      ),
    );
    holder = await RawPop3.connect(relay.pop3Port!);
    await holder.line();
    assert.match(await holder.command(`USER ${TARGETS.locked.name}`), /^\+OK/);
    assert.match(await holder.command(`PASS ${TARGETS.locked.password}`), /^\+OK Mailbox locked/);
    // Fetching keeps a session open (NOOP alone would not, for longer than pop3.idleTimeout)
    keepAlive = setInterval(
      () => (lastKeepAlive = holder.multiCommand('TOP 1 0').catch((err: Error) => err)),
      3_000,
    );
    baselineKb = rssKb(relay.process.pid!);
    const started = Date.now();
    await storm(relay.pop3Port!, tally);
    console.log(
      `fuzz-pop3: ${tally.sessions} sessions, ${tally.lines} reply lines, ${tally.inUse} [IN-USE] refusals, ${tally.hung} sessions not closed in time, ` +
        `${tally.problems.length} bad replies, ${Date.now() - started} ms; RSS ${baselineKb} kB before, ${rssKb(relay.process.pid!)} kB right after`,
    );
  });
  after(async () => {
    clearInterval(keepAlive);
    holder?.close();
    reportIfExited('fuzz-pop3', relay);
    await relay?.stop();
  });

  test('the relay process survived', () => {
    assertSurvived(relay, tally.sessions, SESSIONS);
  });

  test('every reply was well-formed: +OK/-ERR lines, complete multi-line responses ending in ".", RETR sizes as announced', () => {
    assert.ok(tally.lines > SESSIONS, `sessions were answered (${tally.lines} lines)`);
    assert.deepEqual(tally.problems, []);
  });

  test('every session that said QUIT was closed by the server', () => {
    assert.equal(tally.hung, 0, `${tally.hung} sessions were still open 15 s after QUIT`);
  });

  test('a mailbox open in one session is refused to every other ([IN-USE]), never opened twice', () => {
    assert.ok(tally.inUse > 0, 'some sessions tried the locked mailbox');
    assert.equal(tally.lockedLogins, 0);
  });

  test('nothing was lost: sessions that hung up deleted nothing; the others deleted only what they reported at QUIT', () => {
    for (const who of [...TARGETS.dropping, TARGETS.locked])
      assert.deepEqual(uidsOnDisk(relay, who.name), before_.get(who.name), who.name);
    for (const who of TARGETS.quitting) {
      const now = uidsOnDisk(relay, who.name);
      const initial = before_.get(who.name) ?? [];
      assert.equal(
        now.length,
        initial.length - (tally.deleted.get(who.name) ?? 0),
        `${who.name}: ${initial.length} before, ${tally.deleted.get(who.name)} deleted at QUIT`,
      );
      assert.deepEqual(
        now.filter((uid) => !initial.includes(uid)),
        [],
        `${who.name} has no message it did not have`,
      );
    }
    const deleted = [...tally.deleted.values()].reduce((a, b) => a + b, 0);
    console.log(`fuzz-pop3: ${deleted} messages deleted by sessions that said QUIT, 0 lost`);
  });

  test('memory is back near the warmed-up baseline', async () => {
    const settledKb = await rssBackNearBaseline(relay.process.pid!, baselineKb);
    console.log(
      `fuzz-pop3: RSS ${baselineKb} kB baseline, ${settledKb} kB after the storm settled`,
    );
  });

  test('poplib still logs in and reads every message, also in the mailbox that was locked', async () => {
    clearInterval(keepAlive);
    await lastKeepAlive;
    assert.match(
      await holder.command('QUIT'),
      /^\+OK edge-relay signing off \(0 messages deleted\)/,
    );
    for (const who of [...TARGETS.dropping, TARGETS.locked]) {
      const read = await poplibRead(relay.pop3Port!, who);
      assert.deepEqual([...read.uids].sort(), before_.get(who.name), who.name);
      assert.deepEqual(read.retrieved, read.sizes, `${who.name}: RETR gave what LIST announced`);
    }
  });
});

/** What the fuzzer found, replayed on purpose */
describe('POP3 regressions found by fuzzing', () => {
  let relay: RunningRelay;
  const who = account('regress');

  before(async () => {
    relay = await launchRelay({ config: { pop3: { idleTimeout: '30s' } } });
    const added = await relay.cli(
      ['mailbox', 'add', who.name, '--password-stdin'],
      `${who.password}\n`,
    );
    assert.equal(added.code, 0, added.stderr);
    const sent = await python(
      SEND_MANY,
      [String(relay.smtpPort)],
      JSON.stringify([
        [`${who.name}@relay.test`, `Subject: big\r\n\r\n${'x'.repeat(76)}\r\n`.repeat(10_000)],
      ]),
    );
    assert.equal(sent.code, 0, sent.stderr);
    await eventually(
      'the message delivered',
      () => uidsOnDisk(relay, who.name).length === 1 || undefined,
    );
  });
  after(() => relay?.stop());

  test('a RETR of a big message still queued when the client hangs up does not leave the mailbox locked', async () => {
    // The failed login makes the next one wait for its turn; the client is gone before it, so neither that login nor the RETR behind it runs
    const pipelined = `USER ${who.name}\r\nPASS wrong-password\r\nUSER ${who.name}\r\nPASS ${who.password}\r\nRETR 1\r\n`;
    const result = await play(relay.pop3Port!, [Buffer.from(pipelined)], {
      closeWaitMs: 5_000,
      localAddress: '127.3.0.1',
      dropAfterMs: 50,
    });
    assert.match(result.replies[0] ?? '', /^\+OK/);
    await relay.waitForLog(
      (l) =>
        l.msg === 'POP3 client hung up while its login waited; nothing was checked' &&
        l.client === '127.3.0.1',
    );
    const read = await poplibRead(relay.pop3Port!, who);
    assert.equal(read.uids.length, 1, 'the mailbox opens again and still has its message');
  });

  test('client text echoed in a reply is printable ASCII: no CR, NUL or UTF-8 bytes inside a status line', async () => {
    const text =
      'USER a\rb\u0000\u00fc\r\nAUTH \u00e9\u0001\r\nTOP 1 \r\u0002\r\nRETR \u00ff\r\nQUIT\r\n';
    const result = await play(relay.pop3Port!, [Buffer.from(text, 'utf8')], {
      closeWaitMs: 5_000,
      localAddress: '127.3.0.2',
    });
    const reading = readPop3Replies(result.raw);
    assert.deepEqual(reading.problems, []);
    assert.ok(reading.complete);
    assert.deepEqual(result.replies.slice(1, 3), [
      '+OK Send the password of a?b??',
      '-ERR Unsupported SASL mechanism "??"; use PLAIN',
    ]);
  });

  test('plain text after STLS (no TLS handshake) is dropped and the connection closed soon, not left open', async () => {
    const started = Date.now();
    const result = await play(relay.pop3Port!, [Buffer.from('STLS\r\nUSER x\r\nQUIT\r\n')], {
      closeWaitMs: 15_000,
      localAddress: '127.3.0.3',
    });
    assert.equal(result.hung, false);
    assert.ok(
      Date.now() - started < 12_000,
      `closed after ${Date.now() - started} ms, not at the 30 s idle timeout`,
    );
    assert.deepEqual(result.replies.slice(1), ['+OK Begin TLS negotiation']);
  });
});
