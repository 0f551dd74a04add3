/**
 * Power cuts and local mailboxes: kill -9 while devices send to a local
 * mailbox, and kill -9 while a POP3 session's deletions are being applied.
 * After a restart, Python's poplib must find every acknowledged message
 * exactly once and whole, and deletions all done or not done at all.
 */
import assert from 'node:assert/strict';
import { existsSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { python, RawSmtp } from '../support/clients.js';
import { RawPop3 } from '../support/pop3.js';
import { launchRelay, type RunningRelay } from '../support/relay.js';
import { eventually } from '../support/wait.js';

const PASSWORD = 'scans-secret-1';
const BODY_LINE = 'scan data '.repeat(20);

/** Every message through poplib: LIST size, the size RETR announced, the octets poplib received, UIDL, the text */
const POP_DUMP = `
import json, poplib, sys
p = poplib.POP3('127.0.0.1', int(sys.argv[1]), timeout=30)
p.user(sys.argv[2]); p.pass_(sys.argv[3])
sizes = {int(l.split()[0]): int(l.split()[1]) for l in p.list()[1]}
uids = {int(l.split()[0]): l.split()[1].decode() for l in p.uidl()[1]}
out = []
for n in sorted(sizes):
    resp, lines, octets = p.retr(n)
    out.append({'listSize': sizes[n], 'announced': int(resp.split()[1]), 'octets': octets, 'uid': uids[n], 'text': b'\\r\\n'.join(lines).decode('latin1')})
p.quit()
print(json.dumps(out))
`;

interface Dumped {
  listSize: number;
  announced: number;
  octets: number;
  uid: string;
  text: string;
}

async function popDump(relay: RunningRelay, mailbox: string): Promise<Dumped[]> {
  const result = await python(POP_DUMP, [String(relay.pop3Port), mailbox, PASSWORD]);
  assert.equal(result.code, 0, `poplib failed: ${result.stderr}`);
  return JSON.parse(result.stdout) as Dumped[];
}

async function addMailbox(relay: RunningRelay, name: string): Promise<void> {
  const result = await relay.cli(['mailbox', 'add', name, '--password-stdin'], `${PASSWORD}\n`);
  assert.equal(result.code, 0, result.stderr);
}

const mailboxDir = (relay: RunningRelay, name: string, sub: string) =>
  path.join(relay.dataDir, 'mailboxes', name, sub);

/** One device: sends until told to stop or the relay dies; records each token that got a 250 */
async function device(
  port: number,
  client: number,
  count: number,
  acked: Set<string>,
  stopped: () => boolean,
): Promise<void> {
  for (let n = 0; n < count && !stopped(); n++) {
    const token = `tok-${client}-${n}`;
    try {
      const reply = await RawSmtp.send(port, {
        helo: `scanner${client}`,
        from: `scanner${client}@office.test`,
        to: 'scans@relay.test',
        data: `Subject: ${token}\r\nX-Token: ${token}\r\n\r\n${BODY_LINE}\r\nend of ${token}\r\n.\r\n`,
      });
      if (reply.startsWith('250')) acked.add(token);
    } catch {
      return; // the relay died under us: not acknowledged
    }
  }
}

test(
  'kill -9 while devices send to a local mailbox: every acknowledged message is in the mailbox once, whole',
  { timeout: 90_000 },
  async (t) => {
    const first = await launchRelay();
    await addMailbox(first, 'scans');
    const acked = new Set<string>();
    let killed = false;
    const devices = Array.from({ length: 4 }, (_, client) =>
      device(first.smtpPort, client, 60, acked, () => killed),
    );
    await eventually('80 acknowledged messages', () => acked.size >= 80, { timeoutMs: 60_000 });
    await first.kill();
    killed = true;
    await Promise.all(devices);

    const second = await launchRelay({ dir: first.dir });
    try {
      const tokenOf = (text: string) => /X-Token: (\S+)/.exec(text)?.[1] ?? '';
      const delivered = () => readdirSync(mailboxDir(second, 'scans', 'new')).length;
      const queueEmpty = async () => {
        const queue = await second.cli(['queue', 'list', '--json']);
        return queue.code === 0
          ? JSON.parse(queue.stdout).length === 0
          : `queue list failed: ${queue.stderr}`;
      };
      await eventually(
        'the queue to drain into the mailbox',
        async () => delivered() >= acked.size && (await queueEmpty()) === true,
        { timeoutMs: 30_000 },
      );
      const messages = await popDump(second, 'scans');
      const tokens = messages.map((m) => tokenOf(m.text));
      const missing = [...acked].filter((token) => !tokens.includes(token));
      const duplicates = tokens.length - new Set(tokens).size;
      const redelivered = second.logs.filter((l) =>
        l.msg.startsWith('Message already in the mailbox'),
      ).length;
      t.diagnostic(
        `${acked.size} acknowledged before kill -9; ${messages.length} in the mailbox after restart; ${missing.length} missing; ${duplicates} duplicates; ${redelivered} redeliveries found already stored`,
      );
      assert.deepEqual(missing, [], 'every acknowledged message is readable');
      assert.equal(duplicates, 0, 'no message twice');
      assert.equal(new Set(messages.map((m) => m.uid)).size, messages.length, 'UIDLs are unique');
      for (const message of messages) {
        const token = tokenOf(message.text);
        assert.ok(
          message.text.endsWith(`${BODY_LINE}\r\nend of ${token}`),
          `message ${token} is whole`,
        );
        assert.equal(message.announced, message.listSize, 'RETR announces the LIST size');
        assert.equal(message.octets, message.listSize, 'poplib receives exactly the LIST size');
      }
      assert.deepEqual(
        readdirSync(mailboxDir(second, 'scans', 'tmp')),
        [],
        'no half-delivered file is left',
      );
    } finally {
      await second.stop();
    }
  },
);

const SEEDED = 40;
/** Kill moments after the last DELE reply, spread so some land before, some in, some after the deletions */
const KILL_DELAYS_MS = [2, 8, 16];

/** A mailbox of SEEDED known messages, written as fixture files (oldest first by name and time) */
function seed(relay: RunningRelay, mailbox: string, round: number): Map<string, string> {
  const dir = mailboxDir(relay, mailbox, 'new');
  for (const file of readdirSync(dir)) rmSync(path.join(dir, file));
  const texts = new Map<string, string>();
  for (let n = 0; n < SEEDED; n++) {
    const uid = `r${round}n${String(n).padStart(3, '0')}.seed`;
    const text = `Subject: round ${round} message ${n}\r\n\r\n${'body '.repeat(40 + n)}\r\n`;
    writeFileSync(path.join(dir, uid), text);
    texts.set(uid, text);
  }
  return texts;
}

test(
  'kill -9 during POP3 UPDATE: after restart the marked messages are all gone or all there, the rest whole',
  { timeout: 90_000 },
  async (t) => {
    let relay = await launchRelay();
    await addMailbox(relay, 'ops');
    const outcomes: string[] = [];
    try {
      for (const [round, delay] of KILL_DELAYS_MS.entries()) {
        const texts = seed(relay, 'ops', round);
        const uids = [...texts.keys()].sort();
        // Every odd-numbered message (1, 3, 5 ...) is marked
        const marked = uids.filter((_, index) => index % 2 === 0);
        const pop = await RawPop3.connect(relay.pop3Port!);
        await pop.line();
        await pop.command('USER ops');
        assert.match(await pop.command(`PASS ${PASSWORD}`), /^\+OK Mailbox ops has 40 messages/);
        pop.write(marked.map((_, i) => `DELE ${i * 2 + 1}\r\n`).join(''));
        for (let i = 0; i < marked.length; i++)
          assert.match(await pop.line(), /^\+OK Message \d+ marked/);
        pop.write('QUIT\r\n');
        if (delay) await new Promise((resolve) => setTimeout(resolve, delay));
        await relay.kill();
        pop.close();

        const journal = existsSync(path.join(relay.dataDir, 'mailboxes/ops/delete.json'));
        const onDisk = readdirSync(mailboxDir(relay, 'ops', 'new')).filter((file) =>
          marked.includes(file),
        ).length;
        outcomes.push(
          journal
            ? `killed mid-UPDATE (${SEEDED / 2 - onDisk} of ${SEEDED / 2} removed, journal on disk)`
            : onDisk === marked.length
              ? 'killed before UPDATE'
              : 'killed after UPDATE',
        );

        relay = await launchRelay({ dir: relay.dir });
        const messages = await popDump(relay, 'ops');
        const present = new Set(messages.map((m) => m.uid));
        const gone = marked.filter((uid) => !present.has(uid));
        assert.ok(
          gone.length === 0 || gone.length === marked.length,
          `round ${round}: ${gone.length} of ${marked.length} marked messages gone, expected none or all`,
        );
        for (const uid of uids.filter((u) => !marked.includes(u)))
          assert.ok(present.has(uid), `round ${round}: unmarked ${uid} is still there`);
        for (const message of messages) {
          assert.equal(
            `${message.text}\r\n`,
            texts.get(message.uid),
            `round ${round}: ${message.uid} is whole`,
          );
          assert.equal(message.octets, message.listSize);
        }
        assert.equal(
          existsSync(path.join(relay.dataDir, 'mailboxes/ops/delete.json')),
          false,
          'no journal left after restart',
        );
      }
    } finally {
      t.diagnostic(`kill -9 moments: ${outcomes.join('; ')}`);
      await relay.stop();
    }
  },
);
