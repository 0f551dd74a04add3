/**
 * Power cuts that really lose what was not flushed. The relay's whole dir is
 * on a file system layer (test/support/powercut-fs.py, FUSE) that holds every
 * write in memory until fsync/fdatasync; at a random moment the relay is
 * killed and the power cut: a random half of the unflushed pages reach the
 * disk, the rest are lost (a torn journal tail), and the layer is mounted
 * again. POWER_CUTS times (default 3; `make soak` runs more). Every message
 * that got 250 must then be delivered; unacknowledged ones may be dropped.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
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
import { ROOT, launchRelay, type RunningRelay } from '../support/relay.js';

const CUTS = Number(process.env.POWER_CUTS ?? 3);
const DEVICES = 4;
const SEED = Number(process.env.FUZZ_SEED ?? 20261206);
const LAYER = path.join(ROOT, 'test/support/powercut-fs.py');
const usable =
  existsSync('/dev/fuse') && spawnSync('/usr/bin/python3', ['-c', 'import fusepy']).status === 0;

/** The layer over `backing`, mounted on `mountpoint` */
async function mountLayer(backing: string, mountpoint: string): Promise<ChildProcess> {
  const device = statSync(mountpoint).dev;
  const layer = spawn('/usr/bin/python3', [LAYER, backing, mountpoint], {
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  await eventually(
    'the layer is mounted',
    () => (statSync(mountpoint).dev !== device ? true : undefined),
    { timeoutMs: 10_000, everyMs: 50 },
  );
  return layer;
}

/** The power goes: the layer writes back a random part of what it holds and dies; then it is unmounted */
async function cutPower(layer: ChildProcess, mountpoint: string): Promise<void> {
  const exited = new Promise((resolve) => layer.once('exit', resolve));
  layer.kill('SIGUSR1');
  await exited;
  spawnSync('fusermount3', ['-u', '-z', mountpoint]);
}

describe(
  `power cut losing unflushed writes (FUSE), ${CUTS} times`,
  { skip: !usable && 'needs /dev/fuse and python3-fusepy (scripts/test-deps.sh)' },
  () => {
    let upstream: Awaited<ReturnType<typeof startCountingUpstream>>;
    let relay: RunningRelay | undefined;
    let layer: ChildProcess | undefined;
    const base = mkdtempSync(path.join(tmpdir(), 'edge-relay-powercut-fs-'));
    const backing = path.join(base, 'disk');
    const mountpoint = path.join(base, 'mnt');
    const dir = path.join(mountpoint, 'relay');
    const acked: string[] = [];
    let tornTails = 0;
    const config = () => ({
      smtp: { maxMessagesPerMinute: 1_000_000, maxConnectionsPerClient: 1000 },
      delivery: {
        smarthost: { host: '127.0.0.1', port: upstream.port, security: 'none' },
        retry: { delays: ['1s'], maxAge: '5d' },
      },
    });
    const start = async () => {
      const running = await launchRelay({ config: config(), dir });
      const recovered = running.logs.find((line) => line.msg === 'Spool recovered');
      tornTails += Number(recovered?.tornTails ?? 0);
      return running;
    };

    before(async () => {
      mkdirSync(backing);
      mkdirSync(mountpoint);
      upstream = await startCountingUpstream();
      const rng = new Rng(SEED);
      layer = await mountLayer(backing, mountpoint);
      mkdirSync(dir, { recursive: true });
      for (let cut = 0; cut < CUTS; cut++) {
        relay = await start();
        const devices = Array.from({ length: DEVICES }, (_, d) =>
          sendUntilPowerCut(relay!.smtpPort, `device${d}-cut${cut}`, acked, (n) =>
            'scan data '.repeat(100 + ((n * 37) % 400)),
          ),
        );
        await new Promise((resolve) => setTimeout(resolve, 300 + rng.int(1500)));
        await relay.kill();
        await cutPower(layer, mountpoint);
        await Promise.all(devices);
        layer = await mountLayer(backing, mountpoint);
      }
      relay = await start();
    });
    after(async () => {
      await relay?.stop();
      await upstream?.close();
      if (layer) await cutPower(layer, mountpoint);
      rmSync(base, { recursive: true, force: true });
    });

    test('every message that got 250 is delivered', async () => {
      assert.ok(
        acked.length >= CUTS,
        `devices got through between cuts (${acked.length} acknowledged)`,
      );
      const { duplicates } = await everyAcknowledgedDelivered(upstream, acked);
      console.log(
        `fault-power-cut-fs: ${CUTS} power cuts losing unflushed writes, ${acked.length} acknowledged, 0 lost, ${duplicates} duplicates, ${tornTails} torn journal tails detected and dropped`,
      );
    });

    test('the spool is consistent: nothing corrupt, no temp files, the queue drains', async () => {
      await eventually(
        'an empty queue',
        async () => ((await queueList(relay!)).length === 0 ? true : undefined),
        { timeoutMs: 30_000 },
      );
      const spool = path.join(relay!.dataDir, 'spool');
      assert.deepEqual(readdirSync(path.join(spool, 'corrupt')), []);
      assert.deepEqual(readdirSync(path.join(spool, 'tmp')), []);
    });
  },
);
