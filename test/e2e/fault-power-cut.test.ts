/**
 * Power cuts in a loop: devices send while the relay delivers to a live
 * upstream, and the relay is killed with SIGKILL at a random moment, then
 * restarted on the same data dir — POWER_CUTS times (default 8; `make soak`
 * runs 60). Afterwards every message that got 250 has been delivered, the
 * spool holds nothing corrupt, and the queue drains. Duplicates are counted
 * and reported: an upstream that accepted a message just before the cut,
 * when the relay had not yet written that down, gets it again (inherent to
 * SMTP, RFC 1047); everything else must be exact.
 */
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import {
  everyAcknowledgedDelivered,
  queueList,
  sendUntilPowerCut,
  startCountingUpstream,
} from '../support/faults.js';
import { eventually } from '../support/wait.js';
import { Rng } from '../support/fuzz.js';
import { launchRelay, type RunningRelay } from '../support/relay.js';

const CUTS = Number(process.env.POWER_CUTS ?? 8);
const DEVICES = 4;
const SEED = Number(process.env.FUZZ_SEED ?? 20261126);

describe(`power cut (kill -9) at random moments, ${CUTS} times`, () => {
  let upstream: Awaited<ReturnType<typeof startCountingUpstream>>;
  let relay: RunningRelay;
  const acked: string[] = [];
  const config = () => ({
    smtp: { maxMessagesPerMinute: 1_000_000, maxConnectionsPerClient: 1000 },
    delivery: {
      smarthost: { host: '127.0.0.1', port: upstream.port, security: 'none' },
      retry: { delays: ['1s'], maxAge: '5d' },
    },
  });

  before(async () => {
    upstream = await startCountingUpstream();
    const rng = new Rng(SEED);
    let dir: string | undefined;
    for (let cut = 0; cut < CUTS; cut++) {
      relay = await launchRelay({ config: config(), dir });
      dir = relay.dir;
      const devices = Array.from({ length: DEVICES }, (_, d) =>
        sendUntilPowerCut(relay.smtpPort, `device${d}-cut${cut}`, acked),
      );
      await new Promise((resolve) => setTimeout(resolve, 50 + rng.int(600)));
      await relay.kill();
      await Promise.all(devices);
    }
    relay = await launchRelay({ config: config(), dir });
  });
  after(async () => {
    await relay?.stop();
    await upstream?.close();
  });

  test('every message that got 250 is delivered', async () => {
    assert.ok(
      acked.length >= CUTS,
      `devices got through between cuts (${acked.length} acknowledged)`,
    );
    const { duplicates, unacknowledged } = await everyAcknowledgedDelivered(upstream, acked);
    console.log(
      `fault-power-cut: ${CUTS} power cuts, ${acked.length} acknowledged, ${acked.length} delivered, 0 lost, ${duplicates} duplicates, ` +
        `${unacknowledged} delivered that the device never heard 250 for (durable, reply lost in the cut)`,
    );
  });

  test('the spool is consistent: nothing corrupt, no temp files, the queue drains', async () => {
    await eventually(
      'an empty queue',
      async () => ((await queueList(relay)).length === 0 ? true : undefined),
      { timeoutMs: 30_000 },
    );
    const spool = path.join(relay.dataDir, 'spool');
    assert.deepEqual(readdirSync(path.join(spool, 'corrupt')), []);
    assert.deepEqual(readdirSync(path.join(spool, 'tmp')), []);
    assert.deepEqual(readdirSync(path.join(spool, 'files')), []);
  });
});
