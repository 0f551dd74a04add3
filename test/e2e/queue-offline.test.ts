/**
 * The queue commands with no server running: only one process writes the
 * spool, so with the server stopped the command opens it itself (reading
 * needs no lock; a change takes the writer's place). The next server start
 * sees the change.
 */
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { test } from 'node:test';
import { smtplibSend } from '../support/clients.js';
import { queueList } from '../support/faults.js';
import { launchRelay } from '../support/relay.js';
import { eventually } from '../support/wait.js';

// Nothing listens on port 9 of 127.0.0.1: every attempt is refused and the messages wait
const config = {
  delivery: {
    smarthost: { host: '127.0.0.1', port: 9, security: 'none' },
    retry: { delays: ['1h'], maxAge: '5d' },
  },
};

test('with the server stopped, list, hold and delete work on the spool; a restart sees the change', async () => {
  const first = await launchRelay({ config });
  try {
    for (const subject of ['kept', 'deleted'])
      await smtplibSend(
        first.smtpPort,
        'scanner@office.test',
        ['ops@example.com'],
        `Subject: ${subject}\r\n\r\nbody\r\n`,
      );
    await eventually(
      'both messages tried once',
      async () => (await queueList(first)).filter((item) => item.attempts >= 1).length === 2,
      { timeoutMs: 15_000 },
    );
  } finally {
    await first.stop();
  }
  const [kept, deleted] = await queueList(first);
  assert.ok(kept && deleted, 'listed without a server');
  const hold = await first.cli(['queue', 'hold', kept.id]);
  assert.equal(hold.code, 0, hold.stderr);
  const removal = await first.cli(['queue', 'delete', deleted.id]);
  assert.equal(removal.code, 0, removal.stderr);

  const second = await launchRelay({ config, dir: first.dir });
  try {
    const items = await queueList(second);
    assert.deepEqual(
      items.map((item) => item.id),
      [kept.id],
    );
    assert.equal(items[0]?.held, true);
  } finally {
    await second.stop();
    rmSync(first.dir, { recursive: true, force: true });
  }
});
