/**
 * Mailbox administration with the real CLI against the running relay, and
 * copy rules, all seen through Python's poplib: passwords stored as scrypt,
 * password change, `mailbox list` figures, remove (and the postmaster guard).
 */
import assert from 'node:assert/strict';
import { readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { python, RawSmtp } from '../support/clients.js';
import { launchRelay, type RunningRelay } from '../support/relay.js';
import { eventually } from '../support/wait.js';

/** Logs in; prints {"stat": [count, octets], "subjects": [...]} or {"error": "-ERR ..."} */
const POP_SUBJECTS = `
import json, poplib, sys
p = poplib.POP3('127.0.0.1', int(sys.argv[1]), timeout=20)
try:
    p.user(sys.argv[2]); p.pass_(sys.argv[3])
except poplib.error_proto as e:
    print(json.dumps({'error': e.args[0].decode()})); sys.exit(0)
count, octets = p.stat()
subjects = []
for n in range(1, count + 1):
    headers = [l.decode() for l in p.top(n, 0)[1]]
    subjects += [h[len('Subject: '):] for h in headers if h.startswith('Subject: ')]
p.quit()
print(json.dumps({'stat': [count, octets], 'subjects': sorted(subjects)}))
`;

type PopView = { stat: [number, number]; subjects: string[] } | { error: string };

async function popView(relay: RunningRelay, user: string, password: string): Promise<PopView> {
  const result = await python(POP_SUBJECTS, [String(relay.pop3Port), user, password]);
  assert.equal(result.code, 0, `poplib failed: ${result.stderr}`);
  return JSON.parse(result.stdout) as PopView;
}

const passwordOf = (name: string) => `${name}-secret-77`;

async function addMailbox(relay: RunningRelay, name: string): Promise<void> {
  const result = await relay.cli(
    ['mailbox', 'add', name, '--password-stdin'],
    `${passwordOf(name)}\n`,
  );
  assert.equal(result.code, 0, result.stderr);
}

/** One SMTP transaction from a chosen loopback source address; resolves with the RCPT reply, then the DATA reply if RCPT was accepted */
async function send(
  relay: RunningRelay,
  options: { source: string; from: string; to: string; subject: string },
): Promise<string[]> {
  const smtp = await RawSmtp.connect(relay.smtpPort, { localAddress: options.source });
  try {
    await smtp.reply();
    await smtp.command('HELO device\r\n');
    await smtp.command(`MAIL FROM:<${options.from}>\r\n`);
    const rcpt = await smtp.command(`RCPT TO:<${options.to}>\r\n`);
    if (!rcpt.startsWith('250')) return [rcpt];
    await smtp.command('DATA\r\n');
    return [
      rcpt,
      await smtp.command(`Subject: ${options.subject}\r\n\r\nbody of ${options.subject}\r\n.\r\n`),
    ];
  } finally {
    smtp.close();
  }
}

const localDeliveries = (relay: RunningRelay) =>
  relay.logs.filter((l) => l.msg === 'Recipient local').length;

describe('mailbox administration and copy rules', () => {
  let relay: RunningRelay;

  before(async () => {
    relay = await launchRelay({
      config: {
        mailbox: {
          copies: [
            { mailbox: 'printers', senders: ['@printers.lan'] },
            { mailbox: 'lan2', networks: ['127.0.0.2/32'] },
            { mailbox: 'both', senders: ['@printers.lan'], networks: ['127.0.0.2/32'] },
          ],
        },
      },
    });
    for (const name of ['inbox', 'printers', 'lan2', 'both']) await addMailbox(relay, name);
  });
  after(async () => {
    await relay.stop();
  });

  test('copy rules: by sender suffix, by client network, and both together; POP3 shows the copy only where the rule matches', async () => {
    const messages = [
      { source: '127.0.0.1', from: 'copier@printers.lan', subject: 'printer-from-lan1' },
      { source: '127.0.0.2', from: 'cam@cameras.lan', subject: 'camera-from-lan2' },
      { source: '127.0.0.2', from: 'mfp@printers.lan', subject: 'printer-from-lan2' },
      { source: '127.0.0.1', from: 'ups@notprinters.lan', subject: 'other-from-lan1' },
    ];
    const before = localDeliveries(relay);
    for (const message of messages)
      assert.match(
        (await send(relay, { ...message, to: 'inbox@relay.test' })).at(-1) ?? '',
        /^250 /,
      );
    // 4 to inbox, then copies: printers 2, lan2 2, both 1
    await eventually(
      'the messages and their copies in the mailboxes',
      () => localDeliveries(relay) >= before + 9,
      { timeoutMs: 15_000 },
    );
    const subjects = async (name: string) => {
      const view = await popView(relay, name, passwordOf(name));
      assert.ok('subjects' in view, JSON.stringify(view));
      return view.subjects;
    };
    assert.deepEqual(await subjects('inbox'), messages.map((m) => m.subject).sort());
    assert.deepEqual(
      await subjects('printers'),
      ['printer-from-lan1', 'printer-from-lan2'],
      '"@printers.lan" matches that domain only, from any network',
    );
    assert.deepEqual(
      await subjects('lan2'),
      ['camera-from-lan2', 'printer-from-lan2'],
      'the network rule matches any sender from 127.0.0.2',
    );
    assert.deepEqual(
      await subjects('both'),
      ['printer-from-lan2'],
      'sender and network must both match',
    );
  });

  test("mailbox list shows each mailbox's message count and bytes, the same as POP3 STAT", async () => {
    const view = await popView(relay, 'printers', passwordOf('printers'));
    assert.ok('stat' in view, JSON.stringify(view));
    const listed = await relay.cli(['mailbox', 'list']);
    assert.equal(listed.code, 0, listed.stderr);
    const line = listed.stdout.split('\n').find((l) => l.startsWith('printers '));
    assert.match(
      line ?? '',
      new RegExp(`^printers +${view.stat[0]} messages? +${view.stat[1]} bytes?$`),
      listed.stdout,
    );
    assert.equal(view.stat[0], 2);
    assert.match(listed.stdout, /^postmaster +0 messages +0 bytes$/m);
  });

  test('passwords are stored as scrypt hashes in a 0600 file; a changed password replaces the old one over POP3', async () => {
    const usersFile = path.join(relay.dataDir, 'mailboxes/users.json');
    const hashOf = () =>
      (JSON.parse(readFileSync(usersFile, 'utf8')) as Record<string, { hash: string }>).both
        ?.hash ?? '';
    assert.equal(statSync(usersFile).mode & 0o777, 0o600);
    const before = hashOf();
    assert.match(before, /^scrypt\$\d+\$\d+\$\d+\$[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]+$/);
    assert.ok(
      !readFileSync(usersFile, 'utf8').includes(passwordOf('both')),
      'no plaintext password in the users file',
    );

    const changed = await relay.cli(
      ['mailbox', 'password', 'both', '--password-stdin'],
      'brand-new-pass-9\n',
    );
    assert.equal(changed.code, 0, changed.stderr);
    assert.notEqual(hashOf(), before, 'the hash changed');
    assert.ok(!readFileSync(usersFile, 'utf8').includes('brand-new-pass-9'));
    assert.equal(statSync(usersFile).mode & 0o777, 0o600, 'still 0600 after the change');
    assert.deepEqual(
      await popView(relay, 'both', passwordOf('both')),
      { error: '-ERR [AUTH] Wrong mailbox name or password' },
      'the old password stops working',
    );
    const view = await popView(relay, 'both', 'brand-new-pass-9');
    assert.ok(
      'stat' in view && view.stat[0] === 1,
      `the new password opens the mailbox: ${JSON.stringify(view)}`,
    );
  });

  test('a removed mailbox is refused at RCPT with 550; the postmaster mailbox cannot be removed', async () => {
    const removed = await relay.cli(['mailbox', 'remove', 'both']);
    assert.equal(removed.code, 0, removed.stderr);
    const [rcpt] = await send(relay, {
      source: '127.0.0.1',
      from: 'copier@office.test',
      to: 'both@relay.test',
      subject: 'to a removed mailbox',
    });
    assert.match(rcpt ?? '', /^550 /);
    assert.deepEqual(await popView(relay, 'both', 'brand-new-pass-9'), {
      error: '-ERR [AUTH] Wrong mailbox name or password',
    });

    const refused = await relay.cli(['mailbox', 'remove', 'Postmaster']);
    assert.equal(refused.code, 2, 'a usage error, like every refused command');
    assert.equal(
      refused.stderr.trim().split('\n').at(-1),
      'edge-relay: The postmaster mailbox "postmaster" receives bounces and alerts and can\'t be removed',
    );
    const [stillThere] = await send(relay, {
      source: '127.0.0.1',
      from: 'copier@office.test',
      to: 'postmaster@relay.test',
      subject: 'to the postmaster',
    });
    assert.match(stillThere ?? '', /^250 /, 'the postmaster mailbox still takes mail');
  });
});
