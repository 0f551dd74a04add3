/** The spool over real files: accept, recovery of half-written and damaged files, locks */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, statSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { test } from 'node:test';
import { silentLogger } from '../../src/log.js';
import { newQueueId, type QueueId } from '../../src/spool/ids.js';
import { BusyError, lockOwnerText } from '../../src/util/locks.js';
import { Spool } from '../../src/spool/spool.js';

const open = async () => Spool.open(mkdtempSync(path.join(tmpdir(), 'edge-relay-spool-')), silentLogger());
const meta = (id: QueueId) => ({ id, from: 'a@office.test', to: ['b@example.com'], client: { address: '10.0.0.1', helo: 'mfp' } });

test('accept stores the arrival record and the exact bytes, mode 0600', async () => {
  const spool = await open();
  const id = newQueueId();
  const body = Buffer.from('Subject: x\r\n\r\n\xff\x00 binary\r\n', 'latin1');
  const { size } = await spool.accept(meta(id), Readable.from([body]));
  assert.equal(size, body.length);
  const entry = await spool.get(id);
  assert.equal(entry?.arrival.from, 'a@office.test');
  assert.equal(entry?.size, body.length);
  const chunks: Buffer[] = [];
  for await (const chunk of await spool.openBody(id)) chunks.push(chunk as Buffer);
  assert.deepEqual(Buffer.concat(chunks), body);
  assert.equal(statSync(path.join(spool.dir('messages'), `${id}.eml`)).mode & 0o777, 0o600);
});

test('a failing stream leaves nothing behind', async () => {
  const spool = await open();
  const source = new PassThrough();
  const accepting = spool.accept(meta(newQueueId()), source);
  source.write('Subject: half\r\n');
  source.destroy(new Error('client went away'));
  await assert.rejects(accepting);
  assert.deepEqual(readdirSync(spool.dir('tmp')), []);
  assert.deepEqual(await spool.ids(), []);
});

test('recovery: temp files removed, damaged records moved aside, damaged state held, orphan state removed', async () => {
  const spool = await open();
  const good = newQueueId();
  await spool.accept(meta(good), Readable.from(['Subject: ok\r\n\r\nbody\r\n']));
  const withBadState = newQueueId();
  await spool.accept(meta(withBadState), Readable.from(['Subject: state\r\n\r\nbody\r\n']));
  writeFileSync(path.join(spool.dir('state'), `${withBadState}.json`), '{"attempts": 1, trunc');
  writeFileSync(path.join(spool.dir('tmp'), `${newQueueId()}.eml`), 'half a message');
  const damaged = newQueueId();
  writeFileSync(path.join(spool.dir('messages'), `${damaged}.eml`), '{"v":1,"id":"broken');
  const orphan = newQueueId();
  writeFileSync(path.join(spool.dir('state'), `${orphan}.json`), '{}');

  const result = await spool.recover();
  assert.equal(result.removedTemp, 1);
  assert.equal(result.corrupt, 2);
  assert.deepEqual(readdirSync(spool.dir('tmp')), []);
  assert.deepEqual((await spool.ids()).sort(), [good, withBadState].sort());
  assert.ok(!existsSync(path.join(spool.dir('state'), `${orphan}.json`)));
  const corrupt = readdirSync(spool.dir('corrupt'));
  assert.ok(corrupt.some((f) => f.startsWith(`${damaged}.eml`)));
  assert.ok(corrupt.some((f) => f.startsWith(`${withBadState}.json`)));
  const held = await spool.get(withBadState);
  assert.equal(held?.state.held, true, 'a message whose state is damaged waits for a person');
  assert.match(held?.state.lastError ?? '', /damaged/);
  assert.equal((await spool.get(good))?.state.held, false);
  assert.equal(readFileSync(path.join(spool.dir('corrupt'), corrupt.find((f) => f.startsWith(damaged)) ?? ''), 'utf8'), '{"v":1,"id":"broken');
});

test('locks: one holder at a time; a dead holder is taken over', async () => {
  const spool = await open();
  const id = newQueueId();
  const lockFile = path.join(spool.dir('locks'), id);
  const release = await spool.lock(id);
  assert.equal(readlinkSync(lockFile), lockOwnerText(), 'the pid and the boot it runs in');
  await assert.rejects(spool.lock(id), BusyError);
  await release();
  assert.equal(existsSync(lockFile), false);
  for (const leaveDeadLock of [() => symlinkSync('999999999', lockFile), () => writeFileSync(lockFile, '999999999')]) {
    leaveDeadLock();
    const again = await spool.lock(id);
    await again();
  }
  // A live holder's plain-file lock (an earlier version's CLI) is respected
  writeFileSync(lockFile, String(process.pid));
  await assert.rejects(spool.lock(id), BusyError);
});

test('refresh: the state as on disk now, and nothing once the message is gone', async () => {
  const spool = await open();
  const id = newQueueId();
  const accepted = new Promise<unknown>((resolve) => spool.once('accepted', resolve));
  await spool.accept(meta(id), Readable.from([Buffer.from('Subject: x\r\n\r\nhi\r\n')]));
  const known = (await accepted) as Awaited<ReturnType<Spool['get']>>;
  assert.deepEqual(known, await spool.get(id));
  await spool.saveState(id, { ...known!.state, held: true });
  assert.equal((await spool.refresh(known!))?.state.held, true);
  unlinkSync(path.join(spool.dir('messages'), `${id}.eml`));
  assert.equal(await spool.refresh(known!), undefined);
});
