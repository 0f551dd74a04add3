/** The spool over real files: the journal, group commit, restart, torn tails, segment reuse, the earlier layout */
import assert from 'node:assert/strict';
import {
  chownSync,
  closeSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  statSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { test } from 'node:test';
import { silentLogger } from '../../src/log.js';
import { newQueueId, type QueueId } from '../../src/spool/ids.js';
import { SEGMENT_BYTES } from '../../src/spool/journal.js';
import { initialState } from '../../src/spool/records.js';
import { BusyError } from '../../src/util/locks.js';
import { INLINE_MAX, Spool } from '../../src/spool/spool.js';
import { eventually } from '../support/wait.js';

const newDataDir = () => mkdtempSync(path.join(tmpdir(), 'edge-relay-spool-'));
const open = async (dataDir = newDataDir()) => Spool.open(dataDir, silentLogger());
const meta = (id: QueueId) => ({
  id,
  from: 'a@office.test',
  to: ['b@example.com'],
  client: { address: '10.0.0.1', helo: 'mfp' },
});
const dataDirOf = (spool: Spool) => path.dirname(spool.root);

async function bodyOf(spool: Spool, id: QueueId): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of await spool.openBody(id)) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

async function acceptBytes(spool: Spool, body: Buffer | string): Promise<QueueId> {
  const id = newQueueId();
  await spool.accept(meta(id), Readable.from([Buffer.from(body)]));
  return id;
}

const segments = (spool: Spool) =>
  readdirSync(spool.dir('journal'))
    .filter((name) => /^\d+\.seg$/.test(name))
    .sort();

test('accept: a small message goes into the journal, a large one into a file of its own; exact bytes, mode 0600', async () => {
  const spool = await open();
  const small = Buffer.from('Subject: x\r\n\r\n\xff\x00 binary\r\n', 'latin1');
  const large = Buffer.alloc(INLINE_MAX + 10_000, 'large scan ');
  const [smallId, largeId] = [await acceptBytes(spool, small), await acceptBytes(spool, large)];
  assert.equal((await spool.get(smallId))?.size, small.length);
  assert.deepEqual(await bodyOf(spool, smallId), small);
  assert.deepEqual(await bodyOf(spool, largeId), large);
  assert.deepEqual(readdirSync(spool.dir('files')), [`${largeId}.eml`]);
  assert.equal(statSync(path.join(spool.dir('files'), `${largeId}.eml`)).mode & 0o777, 0o600);
  for (const name of segments(spool))
    assert.equal(statSync(path.join(spool.dir('journal'), name)).mode & 0o777, 0o600);
  await spool.close();
});

test('a failing stream leaves nothing behind, small or large', async () => {
  const spool = await open();
  for (const size of [100, INLINE_MAX * 2]) {
    const source = new PassThrough();
    const accepting = spool.accept(meta(newQueueId()), source);
    source.write(Buffer.alloc(size, 'x'));
    setImmediate(() => source.destroy(new Error('client went away')));
    await assert.rejects(accepting);
  }
  assert.deepEqual(readdirSync(spool.dir('tmp')), []);
  assert.deepEqual(readdirSync(spool.dir('files')), []);
  assert.deepEqual(await spool.ids(), []);
  await spool.close();
});

test('group commit: messages arriving together share flushes, and each is durable when accept resolves', async () => {
  const spool = await open();
  const before = spool.flushes;
  const ids = await Promise.all(
    Array.from({ length: 40 }, (_, n) =>
      acceptBytes(spool, `Subject: ${n}\r\n\r\n${'x'.repeat(2000)}\r\n`),
    ),
  );
  const flushes = spool.flushes - before;
  assert.ok(flushes >= 1 && flushes < 40, `40 messages took ${flushes} flushes`);
  // Read the journal back as a restart would, without closing (nothing more is flushed)
  const reader = await Spool.open(dataDirOf(spool), silentLogger(), { writable: false });
  assert.deepEqual(await reader.ids(), [...ids].sort());
  await spool.close();
});

test('restart: messages, states and removals come back as they were', async () => {
  const spool = await open();
  const kept = await acceptBytes(spool, 'Subject: kept\r\n\r\nbody\r\n');
  const removed = await acceptBytes(spool, 'Subject: removed\r\n\r\nbody\r\n');
  const large = await acceptBytes(spool, Buffer.alloc(INLINE_MAX * 2, 'y'));
  const entry = await spool.get(kept);
  await spool.saveState(kept, { ...entry!.state, attempts: 3, held: true, lastError: 'try later' });
  await spool.remove(removed);
  await spool.close();

  const again = await open(dataDirOf(spool));
  assert.deepEqual(await again.ids(), [kept, large].sort());
  assert.equal((await again.get(kept))?.state.attempts, 3);
  assert.equal((await again.get(kept))?.state.held, true);
  assert.deepEqual(await bodyOf(again, kept), Buffer.from('Subject: kept\r\n\r\nbody\r\n'));
  assert.equal((await bodyOf(again, large)).length, INLINE_MAX * 2);
  await again.remove(large);
  await again.close();
  assert.deepEqual(readdirSync(again.dir('files')), [], 'a removed message file goes');
});

test('a torn tail (a record the power cut caught half-written) is detected; everything before it is kept', async () => {
  const spool = await open();
  const first = await acceptBytes(spool, 'Subject: 1\r\n\r\nbody\r\n');
  const second = await acceptBytes(spool, 'Subject: 2\r\n\r\nbody\r\n');
  await spool.close();
  const file = path.join(spool.dir('journal'), segments(spool).at(-1)!);
  const bytes = readFileSync(file);
  // The second record's last byte never reached the disk
  const end = bytes.lastIndexOf(Buffer.from('body\r\n')) + 6;
  const fd = openSync(file, 'r+');
  writeSync(fd, Buffer.from([bytes[end - 1]! ^ 0xff]), 0, 1, end - 1);
  closeSync(fd);

  const again = await open(dataDirOf(spool));
  const result = await again.recover();
  assert.equal(result.tornTails, 1);
  assert.deepEqual(await again.ids(), [first]);
  assert.ok(!(await again.ids()).includes(second));
  await again.close();
});

test('segments: a full one is followed by the next; once all its messages are done it is reused, and nothing comes back', async () => {
  const spool = await open();
  const body = Buffer.alloc(100 * 1024, 'z');
  const ids: QueueId[] = [];
  for (let n = 0; n < Math.ceil((2.5 * SEGMENT_BYTES) / body.length); n++)
    ids.push(await acceptBytes(spool, body));
  assert.ok(segments(spool).length >= 3, `${segments(spool).length} segments`);
  const survivor = ids[0]!;
  for (const id of ids.slice(1)) await spool.remove(id);
  await spool.saveState(survivor, {
    ...initialState((await spool.get(survivor))!.arrival),
    attempts: 1,
  });
  await spool.close();
  const again = await open(dataDirOf(spool));
  assert.deepEqual(await again.ids(), [survivor]);
  assert.deepEqual(await bodyOf(again, survivor), body);
  await again.remove(survivor);
  await again.close();
  const third = await open(dataDirOf(spool));
  assert.deepEqual(await third.ids(), []);
  assert.ok(segments(third).length <= 2, `done segments go: ${segments(third).join(' ')}`);
  assert.ok(
    readdirSync(third.dir('journal')).some((name) => name.startsWith('spare-')),
    'and are kept for reuse',
  );
  await third.close();
});

test('upgrade: messages and states in the earlier layout are all kept; damaged files go aside', async () => {
  const dataDir = newDataDir();
  const root = path.join(dataDir, 'spool');
  for (const dir of ['messages', 'state', 'tmp', 'locks', 'corrupt'])
    mkdirSync(path.join(root, dir), { recursive: true });
  const legacy = (id: QueueId, body: string) => {
    const arrival = {
      v: 1,
      id,
      from: 'old@office.test',
      to: ['x@example.com', 'y@example.com'],
      receivedAt: new Date().toISOString(),
      client: { address: '10.0.0.9', helo: 'old' },
    };
    writeFileSync(path.join(root, 'messages', `${id}.eml`), `${JSON.stringify(arrival)}\n${body}`, {
      mode: 0o600,
    });
    return arrival;
  };
  const fresh = newQueueId();
  legacy(fresh, 'Subject: never tried\r\n\r\nbody\r\n');
  const tried = newQueueId();
  const arrival = legacy(tried, 'Subject: tried\r\n\r\nbody\r\n');
  const state = {
    ...initialState(arrival as never),
    attempts: 2,
    recipients: [
      { address: 'x@example.com', status: 'delivered' },
      { address: 'y@example.com', status: 'deferred', lastError: '451 later' },
    ],
  };
  writeFileSync(path.join(root, 'state', `${tried}.json`), JSON.stringify(state));
  const badState = newQueueId();
  legacy(badState, 'Subject: bad state\r\n\r\nbody\r\n');
  writeFileSync(path.join(root, 'state', `${badState}.json`), '{"attempts": 1, trunc');
  const damaged = newQueueId();
  writeFileSync(path.join(root, 'messages', `${damaged}.eml`), '{"v":1,"id":"broken');
  writeFileSync(path.join(root, 'tmp', `${newQueueId()}.eml`), 'half a message');
  writeFileSync(path.join(root, 'state', `${newQueueId()}.json`), '{}');

  const spool = await open(dataDir);
  const result = await spool.recover();
  assert.equal(result.removedTemp, 1);
  assert.equal(result.corrupt, 2);
  assert.deepEqual(await spool.ids(), [fresh, tried, badState].sort());
  assert.deepEqual(await bodyOf(spool, tried), Buffer.from('Subject: tried\r\n\r\nbody\r\n'));
  assert.equal((await spool.get(tried))?.state.attempts, 2);
  assert.equal((await spool.get(tried))?.state.recipients[0]?.status, 'delivered');
  assert.equal(
    (await spool.get(badState))?.state.held,
    true,
    'a message whose state was damaged waits for a person',
  );
  assert.ok(readdirSync(spool.dir('corrupt')).some((f) => f.startsWith(`${damaged}.eml`)));
  assert.ok(!existsSync(path.join(root, 'state')) && !existsSync(path.join(root, 'locks')));
  await spool.close();

  const again = await open(dataDir);
  await again.recover();
  assert.deepEqual(
    await again.ids(),
    [fresh, tried, badState].sort(),
    'taken in once, kept over a restart',
  );
  await again.remove(fresh);
  await again.close();
  assert.ok(
    !existsSync(path.join(root, 'messages', `${fresh}.eml`)),
    'its file goes once it is done',
  );
});

test('locks: one holder per message; one writer per spool, readers beside it', async () => {
  const spool = await open();
  const id = await acceptBytes(spool, 'Subject: x\r\n\r\nhi\r\n');
  const release = await spool.lock(id);
  await assert.rejects(spool.lock(id), BusyError);
  await release();
  await (
    await spool.lock(id)
  )();
  await assert.rejects(Spool.open(dataDirOf(spool), silentLogger()), BusyError);
  const reader = await Spool.open(dataDirOf(spool), silentLogger(), { writable: false });
  assert.deepEqual(await reader.ids(), [id]);
  await spool.close();
  await (await open(dataDirOf(spool))).close();
});

test('get: the state as it is now, and nothing once the message is gone', async () => {
  const spool = await open();
  const id = newQueueId();
  const accepted = new Promise<unknown>((resolve) => spool.once('accepted', resolve));
  await spool.accept(meta(id), Readable.from([Buffer.from('Subject: x\r\n\r\nhi\r\n')]));
  const known = (await accepted) as Awaited<ReturnType<Spool['get']>>;
  assert.deepEqual(known, await spool.get(id));
  await spool.saveState(id, { ...known!.state, held: true });
  assert.equal((await spool.get(id))?.state.held, true);
  await spool.remove(id);
  assert.equal(await spool.get(id), undefined);
  await spool.close();
});

test(
  'a segment made by root (the command line with the service stopped) belongs to the service user who owns the spool',
  { skip: process.getuid?.() !== 0 && 'needs root' },
  async () => {
    const dataDir = newDataDir();
    mkdirSync(path.join(dataDir, 'spool', 'journal'), { recursive: true });
    chownSync(path.join(dataDir, 'spool', 'journal'), 4321, 4321);
    const spool = await open(dataDir);
    await spool.close();
    for (const name of segments(spool))
      assert.equal(statSync(path.join(spool.dir('journal'), name)).uid, 4321);
  },
);

test('the bodies taken in last are sent from memory, within a bound; older ones are read from the journal', async () => {
  const spool = await open();
  const body = Buffer.from(
    'Subject: recent\r\n\r\nkept in memory for the delivery that follows\r\n',
  );
  const id = await acceptBytes(spool, body);
  // Change the bytes on disk behind the spool's back: what comes out shows where it was read from
  const [segment] = segments(spool);
  const file = path.join(spool.dir('journal'), segment!);
  const onDisk = readFileSync(file);
  const at = onDisk.indexOf(body);
  const fd = openSync(file, 'r+');
  writeSync(fd, Buffer.alloc(body.length, 'x'), 0, body.length, at);
  closeSync(fd);
  assert.deepEqual(await bodyOf(spool, id), body);
  // Later messages, together more than the bound (1 MiB), push it out
  for (let i = 0; i < 9; i++) await acceptBytes(spool, Buffer.alloc(120 * 1024, 'later '));
  assert.deepEqual(await bodyOf(spool, id), Buffer.alloc(body.length, 'x'));
  await spool.close();
});

test('a new message goes to delivery soon after its 250 even when no other message follows', async () => {
  const spool = await open();
  const announced: QueueId[] = [];
  spool.on('accepted', (entry) => announced.push(entry.arrival.id));
  const id = await acceptBytes(spool, 'Subject: lone\r\n\r\nno flush follows\r\n');
  const started = Date.now();
  await eventually('the lone message goes to delivery', () => announced.includes(id), {
    timeoutMs: 2_000,
  });
  assert.ok(Date.now() - started < 1_000, 'within the handoff bound, not at the next sweep');
  await spool.close();
});
