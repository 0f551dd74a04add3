/**
 * The housekeeping scheduler on node-cron's real clock: a job that throws is
 * logged with its name and runs again at its next turn; a bad schedule is
 * refused with a warning; stop() ends every job.
 */
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { test } from 'node:test';
import { Scheduler } from '../../src/jobs/scheduler.js';
import { createLogger } from '../../src/log.js';
import { eventually } from '../support/wait.js';

interface Line {
  level: number;
  msg: string;
  job?: string;
  err?: string;
  schedule?: string;
}

function capture(): { lines: Line[]; log: ReturnType<typeof createLogger> } {
  const lines: Line[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const text of chunk.toString().split('\n').filter(Boolean))
        lines.push(JSON.parse(text) as Line);
      done();
    },
  });
  return { lines, log: createLogger({ level: 'info', destination }) };
}

test('a job that throws is logged and runs again at its next turn; stop() ends it', async () => {
  const { lines, log } = capture();
  const scheduler = new Scheduler(log);
  let runs = 0;
  scheduler.set({
    name: 'flaky',
    schedule: '* * * * * *',
    run: async () => {
      runs++;
      if (runs === 1) throw new Error('Disk on fire');
    },
  });
  try {
    await eventually('a second run after the failure', () => runs >= 2, { timeoutMs: 5_000 });
  } finally {
    await scheduler.stop();
  }
  const failure = lines.find((l) => l.job === 'flaky');
  assert.equal(failure?.level, 50, 'logged as an error');
  assert.equal(failure?.msg, 'Job "flaky" failed');
  assert.equal(failure?.err, 'Disk on fire');
  assert.equal(lines.filter((l) => l.job === 'flaky').length, 1, 'only the failed run is logged');
  assert.deepEqual(scheduler.names(), []);
  const stoppedAt = runs;
  // A witness on the same every-second schedule proves the stopped job's next turns have come and gone
  const witness = new Scheduler(log);
  let witnessRuns = 0;
  witness.set({ name: 'witness', schedule: '* * * * * *', run: async () => void witnessRuns++ });
  try {
    await eventually('two turns of the schedule after stop()', () => witnessRuns >= 2, {
      timeoutMs: 5_000,
      everyMs: 20,
    });
  } finally {
    await witness.stop();
  }
  assert.equal(runs, stoppedAt, 'no run after stop()');
});

test('an invalid schedule is refused with a warning naming it; set() replaces a job of the same name', async () => {
  const { lines, log } = capture();
  const scheduler = new Scheduler(log);
  const idle = async () => undefined;
  scheduler.set({ name: 'digest', schedule: '0 7 * * *', run: idle });
  scheduler.set({ name: 'digest', schedule: '30 6 * * *', run: idle });
  scheduler.set({ name: 'broken', schedule: 'every tuesday', run: idle });
  assert.deepEqual(scheduler.names(), ['digest']);
  const warning = lines.find((l) => l.job === 'broken');
  assert.equal(warning?.level, 40);
  assert.equal(warning?.msg, 'Job "broken" has an invalid schedule "every tuesday"; not scheduled');
  scheduler.set({ name: 'digest', schedule: 'nonsense', run: idle });
  assert.deepEqual(
    scheduler.names(),
    [],
    'a bad new schedule removes the old one rather than keeping a stale time',
  );
  await scheduler.stop();
});

test('runSoon runs a job once ahead of its schedule, never beside a run still going, and not after stop()', async (t) => {
  const { lines, log } = capture();
  const scheduler = new Scheduler(log);
  let runs = 0;
  let finish = () => undefined as void;
  scheduler.set({
    name: 'limits',
    schedule: '0 0 1 1 *',
    run: async () => {
      runs++;
      await new Promise<void>((resolve) => (finish = resolve));
      throw new Error('disk gone');
    },
  });
  // Mocked timers: each tick fires exactly the runSoon turns that are due
  t.mock.timers.enable({ apis: ['setTimeout'] });
  scheduler.runSoon('limits', 10);
  scheduler.runSoon('limits', 60);
  t.mock.timers.tick(10);
  assert.equal(runs, 1, 'the first turn started a run');
  t.mock.timers.tick(50);
  assert.equal(runs, 1, 'the second start found the first still running');
  finish();
  await eventually(
    'the failed job logged as an error',
    () => lines.some((l) => l.job === 'limits' && l.level === 50),
    { timeoutMs: 2_000 },
  );
  scheduler.runSoon('limits', 50);
  await scheduler.stop();
  t.mock.timers.tick(1_000);
  assert.equal(runs, 1, 'nothing runs after stop()');
});

test('after stop() nothing is scheduled: set() and runSoon() are refused, and a run that ends late cannot re-arm', async () => {
  const { log } = capture();
  const scheduler = new Scheduler(log);
  let rearmed: boolean | undefined;
  let finish = () => undefined as void;
  const started = new Promise<void>((resolve) => {
    scheduler.set({
      name: 'slow',
      schedule: '0 0 1 1 *',
      run: async () => {
        resolve();
        await new Promise<void>((end) => (finish = end));
        // What a config listener or a job's own follow-up does once the run ends
        rearmed = scheduler.set({
          name: 'slow-follow-up',
          schedule: '* * * * * *',
          run: async () => undefined,
        });
      },
    });
  });
  // The scheduler's timers do not hold the process open; this test must stay alive until it has its answer
  const alive = setInterval(() => undefined, 1_000);
  try {
    assert.equal(scheduler.runSoon('slow', 0), true);
    await started;
    await scheduler.stop();
    finish();
    await eventually('the late run to end', () => rearmed !== undefined, { timeoutMs: 2_000 });
  } finally {
    clearInterval(alive);
  }
  assert.equal(rearmed, false, 'the late run was refused a new job');
  assert.equal(
    scheduler.set({ name: 'after-stop', schedule: '* * * * * *', run: async () => undefined }),
    false,
  );
  assert.equal(scheduler.runSoon('slow', 0), false);
  assert.deepEqual(scheduler.names(), [], 'no job is scheduled after stop()');
});
