/** pipeThrough: settles once, on the sink's finish or on the first failure anywhere, and leaves nothing open */
import assert from 'node:assert/strict';
import { PassThrough, Transform, Writable } from 'node:stream';
import { test } from 'node:test';
import { pipeThrough } from '../../src/util/streams.js';

function collector(fail?: Error): Writable & { text: () => string } {
  const chunks: Buffer[] = [];
  const sink = new Writable({
    write: (chunk: Buffer, _e, done) => (fail ? done(fail) : (chunks.push(chunk), done())),
  });
  return Object.assign(sink, { text: () => Buffer.concat(chunks).toString() });
}

const upper = (): Transform =>
  new Transform({ transform: (chunk, _e, done) => done(null, String(chunk).toUpperCase()) });

test('the source reaches the sink through every transform', async () => {
  const source = new PassThrough();
  const sink = collector();
  const piped = pipeThrough(source, [upper(), new PassThrough()], sink);
  source.write('hello ');
  source.end('world');
  await piped;
  assert.equal(sink.text(), 'HELLO WORLD');
});

test('a transform that fails rejects with its error and destroys the other streams', async () => {
  const source = new PassThrough();
  const sink = collector();
  const tooBig = new Error('message too big');
  const limit = new Transform({ transform: (_c, _e, done) => done(tooBig) });
  const piped = pipeThrough(source, [limit], sink);
  source.write('x');
  await assert.rejects(piped, (err) => err === tooBig);
  assert.ok(source.destroyed && sink.destroyed, 'nothing is left open');
});

test('a source that closes before its end (the client hung up) rejects', async () => {
  const source = new PassThrough();
  const sink = collector();
  const piped = pipeThrough(source, [], sink);
  source.write('half a message');
  source.destroy();
  await assert.rejects(piped, { code: 'ERR_STREAM_PREMATURE_CLOSE' });
  assert.ok(sink.destroyed);
});

test('a sink that fails (the disk is full) rejects with its error', async () => {
  const source = new PassThrough();
  const full = Object.assign(new Error('no space left on device'), { code: 'ENOSPC' });
  const piped = pipeThrough(source, [upper()], collector(full));
  source.end('data');
  await assert.rejects(piped, { code: 'ENOSPC' });
  assert.ok(source.destroyed);
});
