/** The mailbox store on a real folder: crash recovery, delivery at most once per queue id, the postmaster guard, passwords */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, promises as fs, readdirSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { test } from 'node:test';
import { RelayError, UsageError } from '../../src/errors.js';
import { silentLogger } from '../../src/log.js';
import { MailboxStore } from '../../src/mailbox/store.js';
import { newQueueId } from '../../src/spool/ids.js';
import { storageError } from '../../src/spool/spool.js';

async function openStore(): Promise<MailboxStore> {
  const store = await MailboxStore.open(
    mkdtempSync(path.join(tmpdir(), 'edge-relay-mailbox-')),
    silentLogger(),
  );
  await store.add('alice', 'alice-secret-1');
  return store;
}

const text = (body: string) => Readable.from([Buffer.from(body)]);
const folder = (store: MailboxStore, sub: string) => path.join(store.root, 'alice', sub);

test('recover() removes half-delivered files and finishes an interrupted deletion', async () => {
  const store = await openStore();
  const keep = await store.deliver('alice', text('Subject: keep\r\n\r\nstays\r\n'), 'msg');
  const doomed = await store.deliver('alice', text('Subject: doomed\r\n\r\ngoes\r\n'), 'msg');
  // The state a kill -9 leaves: a half-written delivery in tmp/, and a journal whose deletions never ran
  await fs.writeFile(path.join(folder(store, 'tmp'), 'zz1.half'), 'Subject: half');
  await fs.writeFile(path.join(store.root, 'alice', 'delete.json'), JSON.stringify([doomed.uid]));
  await store.recover();
  assert.deepEqual(readdirSync(folder(store, 'tmp')), [], 'tmp/ is empty');
  assert.deepEqual(
    (await store.list('alice')).map((m) => m.uid),
    [keep.uid],
    'the journaled message is gone, the other stays',
  );
  assert.equal(
    existsSync(path.join(store.root, 'alice', 'delete.json')),
    false,
    'the journal is gone',
  );
});

test('deleteMany removes exactly the named messages and leaves no journal', async () => {
  const store = await openStore();
  const uids: string[] = [];
  for (let n = 0; n < 4; n++)
    uids.push((await store.deliver('alice', text(`Subject: ${n}\r\n\r\nbody\r\n`), 'msg')).uid);
  await store.deleteMany('alice', [uids[0]!, uids[2]!]);
  assert.deepEqual(
    (await store.list('alice')).map((m) => m.uid).sort(),
    [uids[1]!, uids[3]!].sort(),
  );
  assert.equal(existsSync(path.join(store.root, 'alice', 'delete.json')), false);
});

test('a message delivered again under the same queue id (a retry after a crash) is not added twice', async () => {
  const store = await openStore();
  const id = newQueueId();
  const first = await store.deliver('alice', text('Subject: once\r\n\r\nbody\r\n'), id);
  const again = await store.deliver('alice', text('Subject: once\r\n\r\nbody\r\n'), id);
  assert.equal(again.uid, first.uid);
  assert.equal((await store.list('alice')).length, 1);
  const other = await store.deliver('alice', text('Subject: other\r\n\r\nbody\r\n'), newQueueId());
  assert.notEqual(other.uid, first.uid, 'another queue id is another message');
  const alerts = [
    await store.deliver('alice', text('Subject: a\r\n\r\n'), 'alert'),
    await store.deliver('alice', text('Subject: a\r\n\r\n'), 'alert'),
  ];
  assert.notEqual(
    alerts[0]!.uid,
    alerts[1]!.uid,
    'messages not from the queue always get a new name',
  );
  assert.equal((await store.list('alice')).length, 4);
});

test('delivered bytes are exactly what was sent, the file is 0600, and tmp/ is left empty', async () => {
  const store = await openStore();
  const body = Buffer.concat(
    Array.from({ length: 50 }, (_, n) => Buffer.from(`line ${n} ${'x'.repeat(2000)}\r\n`)),
  );
  const stored = await store.deliver(
    'alice',
    Readable.from([body.subarray(0, 30_000), body.subarray(30_000)]),
    newQueueId(),
  );
  const file = path.join(folder(store, 'new'), stored.uid);
  assert.equal(stored.size, body.length);
  assert.deepEqual(await fs.readFile(file), body);
  assert.equal(statSync(file).mode & 0o777, 0o600);
  assert.deepEqual(readdirSync(folder(store, 'tmp')), []);
});

test('a source that fails midway leaves nothing behind and reports a temporary error', async () => {
  const store = await openStore();
  const failing = Readable.from(
    (async function* () {
      yield Buffer.from('Subject: cut\r\n\r\n');
      throw new Error('Connection lost');
    })(),
  );
  await assert.rejects(
    store.deliver('alice', failing, newQueueId()),
    (err: unknown) => err instanceof RelayError && err.kind === 'temporary',
  );
  assert.deepEqual(readdirSync(folder(store, 'tmp')), []);
  assert.deepEqual(readdirSync(folder(store, 'new')), []);
});

test('the postmaster mailbox cannot be removed; another one can', async () => {
  const store = await openStore();
  await store.ensure('postmaster');
  await assert.rejects(
    store.remove('PostMaster', 'postmaster'),
    (err: unknown) =>
      err instanceof UsageError &&
      /^The postmaster mailbox "postmaster" receives bounces/.test(err.message),
  );
  assert.ok(store.exists('postmaster'));
  await store.remove('alice', 'postmaster');
  assert.equal(store.exists('alice'), false);
  await assert.rejects(store.remove('alice', 'postmaster'), /No mailbox named "alice"/);
});

test('mailboxes added and changed at the same moment (two admins, a script) are all kept', async () => {
  const store = await openStore();
  const names = ['bob', 'carol', 'dave', 'erin', 'frank'];
  await Promise.all([
    ...names.map((name) => store.add(name, `${name}-secret-1`)),
    store.setPassword('alice', 'alice-secret-2'),
  ]);
  assert.deepEqual(await store.names(), ['alice', ...names]);
  assert.ok(await store.verify('alice', 'alice-secret-2'), 'the password change is kept too');
  for (const name of names) assert.ok(await store.verify(name, `${name}-secret-1`), name);
});

test('a full disk or an exhausted quota while storing is 452 4.3.1, as in the spool; other errors 451 4.3.0', async () => {
  const store = await openStore();
  const failing = (code: string) =>
    new Readable({
      read() {
        this.destroy(Object.assign(new Error(`${code}: write failed`), { code }));
      },
    });
  for (const code of ['EDQUOT', 'ENOSPC']) {
    const err = await store.deliver('alice', failing(code), 'msg').catch((e: unknown) => e);
    assert.ok(err instanceof RelayError, code);
    assert.equal(
      err.toReply(),
      `452 4.3.1 Insufficient system storage (${code === 'EDQUOT' ? 'disk quota exceeded' : 'disk full'}) while storing the message in mailbox alice, try again later`,
    );
  }
  const other = await store.deliver('alice', failing('EIO'), 'msg').catch((e: unknown) => e);
  assert.ok(other instanceof RelayError);
  assert.equal(
    other.toReply(),
    '451 4.3.0 Local error while storing the message in mailbox alice: EIO',
  );
  assert.deepEqual(readdirSync(folder(store, 'tmp')), [], 'no partial file is left');
  assert.equal(
    storageError(Object.assign(new Error('quota'), { code: 'EDQUOT' })).toReply(),
    '452 4.3.1 Insufficient system storage (disk quota exceeded) while queueing, try again later',
  );
});
