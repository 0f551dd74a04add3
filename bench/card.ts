/**
 * The queue as an SD card sees it (the method of shared/tools/sdsim, root
 * needed): the relay's data dir on its own loop-mounted ext4, whose block
 * device counts the flushes and sectors really asked of it; then the same
 * load with every flush of the relay made to take 4 ms, one at a time
 * machine-wide (slowsync.so), as on a card.
 *
 *   node --import tsx bench/card.ts [CHECKOUT]   figures for edge-relay in CHECKOUT (default: this one)
 *   node --import tsx bench/card.ts postfix      figures for a private Postfix (bench/postfix.sh)
 *   node --import tsx bench/card.ts floor        figures for the library floor (bench/floor.mjs journal;
 *                                                 this checkout's build/ must be current)
 *
 * bench.ts uses `cardFigures` for its table beside Postfix and the floor.
 */
import { execFileSync, spawn } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { serveUntilRunning, testConfig } from '../test/support/relay.js';
import { nowMs, smtpSource, startSink, waitListening, type Sink } from './measure.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const MESSAGES = Number(process.env.CARD_MESSAGES ?? 1000);
const LATENCY_MESSAGES = 200;
const LATENCY_RUNS = 3;
const median = (values: number[]) =>
  [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
const SESSIONS = 20;
const SLOWSYNC_US = 4000;
const SLOWSYNC_SO = process.env.SLOWSYNC_SO ?? '/tmp/sdsim/slowsync.so';

/** Starts something that relays to the sink with its queue under `dir`; env is added to its environment */
export type CardTarget = (
  dir: string,
  sink: Sink,
  env: NodeJS.ProcessEnv,
) => Promise<{ port: number; stop(): Promise<void> }>;

export interface CardFigures {
  device_flushes_per_msg: number;
  device_kib_per_msg: number;
  slowsync_flushes_per_msg: number;
  slowsync_accept_rate: number;
  slowsync_relay_rate: number;
  slowsync_single_session_latency: number;
}

export const CARD_UNITS: Record<keyof CardFigures, string> = {
  device_flushes_per_msg: 'flushes/msg',
  device_kib_per_msg: 'KiB/msg',
  slowsync_flushes_per_msg: 'flushes/msg',
  slowsync_accept_rate: 'msg/s',
  slowsync_relay_rate: 'msg/s',
  slowsync_single_session_latency: 'ms/msg',
};

/** slowsync.so, built from shared/tools/sdsim when missing */
function slowsync(): string {
  if (!existsSync(SLOWSYNC_SO)) {
    mkdirSync(path.dirname(SLOWSYNC_SO), { recursive: true });
    execFileSync('make', [
      '-s',
      '-C',
      path.join(HERE, '..', '..', 'shared', 'tools', 'sdsim'),
      `OUT=${path.dirname(SLOWSYNC_SO)}`,
    ]);
  }
  return SLOWSYNC_SO;
}

/** A fresh 2 GB ext4 on a loop device, mounted for the duration of `work` */
async function withCard<T>(work: (mount: string, device: string) => Promise<T>): Promise<T> {
  const base = mkdtempSync(path.join(tmpdir(), 'edge-relay-card-'));
  const image = path.join(base, 'card.img');
  const mount = path.join(base, 'mnt');
  mkdirSync(mount);
  execFileSync('truncate', ['-s', '2G', image]);
  execFileSync('mkfs.ext4', ['-q', '-F', image]);
  execFileSync('mount', ['-o', 'loop', image, mount]);
  try {
    const device = path.basename(
      execFileSync('findmnt', ['-no', 'SOURCE', mount], { encoding: 'utf8' }).trim(),
    );
    // Postfix's daemons run as another user and must reach their queue
    execFileSync('chmod', ['755', base, mount]);
    return await work(mount, device);
  } finally {
    execFileSync('umount', [mount]);
    rmSync(base, { recursive: true, force: true });
  }
}

/** Sectors written and flushes completed by a block device so far */
function deviceCounters(device: string): { sectors: number; flushes: number } {
  const fields = readFileSync(`/sys/block/${device}/stat`, 'utf8').trim().split(/\s+/).map(Number);
  return { sectors: fields[6]!, flushes: fields[15]! };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Real device counts: MESSAGES x 2 KB from SESSIONS sessions, relayed to the sink, then everything written back */
async function deviceRun(
  target: CardTarget,
  sink: Sink,
): Promise<Pick<CardFigures, 'device_flushes_per_msg' | 'device_kib_per_msg'>> {
  return withCard(async (mount, device) => {
    const running = await target(path.join(mount, 'q'), sink, {});
    try {
      await sleep(2000);
      execFileSync('sync');
      const before = deviceCounters(device);
      const delivered = sink.count();
      await smtpSource(running.port, { sessions: SESSIONS, messages: MESSAGES, bytes: 2048 });
      await sink.waitFor(delivered + MESSAGES, 300_000);
      // What a delivery leaves to write (its outcome, a removal) is written too
      await sleep(1000);
      execFileSync('sync');
      const after = deviceCounters(device);
      return {
        device_flushes_per_msg: (after.flushes - before.flushes) / MESSAGES,
        device_kib_per_msg: ((after.sectors - before.sectors) * 512) / 1024 / MESSAGES,
      };
    } finally {
      await running.stop();
    }
  });
}

/** The modelled card: every flush of the target takes 4 ms more, one at a time */
async function slowsyncRun(
  target: CardTarget,
  sink: Sink,
): Promise<Omit<CardFigures, 'device_flushes_per_msg' | 'device_kib_per_msg'>> {
  const dir = mkdtempSync(path.join(tmpdir(), 'edge-relay-slowsync-'));
  const count = path.join(dir, 'flushes');
  const lock = path.join(dir, 'slowsync.lock');
  writeFileSync(count, '');
  writeFileSync(lock, '', { mode: 0o644 });
  execFileSync('chmod', ['-R', 'a+rwX', dir]);
  const env = {
    LD_PRELOAD: slowsync(),
    SLOWSYNC_US: String(SLOWSYNC_US),
    SLOWSYNC_LOCK: lock,
    SLOWSYNC_COUNT: count,
  };
  const running = await target(path.join(dir, 'q'), sink, env);
  const flushes = () => statSync(count).size;
  try {
    await sleep(2000);
    let delivered = sink.count();
    // One run of 200 on a shared machine swings by half; the median of three is the steady figure
    const runsMs: number[] = [];
    for (let run = 0; run < LATENCY_RUNS; run++) {
      runsMs.push(
        await smtpSource(running.port, { sessions: 1, messages: LATENCY_MESSAGES, bytes: 2048 }),
      );
      delivered += LATENCY_MESSAGES;
      await sink.waitFor(delivered, 120_000);
    }
    const latencyMs = median(runsMs);
    await sleep(1000);
    delivered = sink.count();
    const flushesBefore = flushes();
    const started = nowMs();
    const acceptMs = await smtpSource(running.port, {
      sessions: SESSIONS,
      messages: MESSAGES,
      bytes: 2048,
    });
    const relayedAt = await sink.waitFor(delivered + MESSAGES, 300_000);
    return {
      slowsync_flushes_per_msg: (flushes() - flushesBefore) / MESSAGES,
      slowsync_accept_rate: MESSAGES / (acceptMs / 1000),
      slowsync_relay_rate: MESSAGES / ((relayedAt - started) / 1000),
      slowsync_single_session_latency: latencyMs / LATENCY_MESSAGES,
    };
  } finally {
    await running.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

export async function cardFigures(target: CardTarget, sink: Sink): Promise<CardFigures> {
  return { ...(await deviceRun(target, sink)), ...(await slowsyncRun(target, sink)) };
}

/** edge-relay from `checkout` (its build/ must be current), as the systemd unit starts it */
export function edgeRelayOnCard(checkout: string, serviceEnv: NodeJS.ProcessEnv = {}): CardTarget {
  return async (dir, sink, env) => {
    mkdirSync(dir, { recursive: true });
    const configFile = path.join(dir, 'config.json');
    const config = testConfig(path.join(dir, 'data'), {
      smtp: {
        maxMessageSize: 100 * 1024 * 1024,
        maxConnections: 200,
        maxConnectionsPerClient: 200,
        maxMessagesPerMinute: 1_000_000,
      },
      delivery: { smarthost: { host: '127.0.0.1', port: sink.port, security: 'none' } },
    });
    writeFileSync(configFile, JSON.stringify(config));
    const served = await serveUntilRunning(
      [process.execPath, path.join(checkout, 'bin', 'edge-relay'), 'serve', '--config', configFile],
      {
        cwd: dir,
        env: { ...process.env, ...serviceEnv, ...env },
        timeoutMs: 30_000,
      },
    );
    return {
      port: served.smtpPort,
      async stop() {
        served.child.kill('SIGTERM');
        await served.exited;
      },
    };
  };
}

/** A private Postfix (bench/postfix.sh) with its queue under `dir` */
export function postfixOnCard(port: () => Promise<number>): CardTarget {
  return async (dir, sink, env) => {
    mkdirSync(dir, { recursive: true });
    const smtpPort = await port();
    const script = path.join(HERE, 'postfix.sh');
    const run = (action: string) =>
      execFileSync('bash', [script, dir, String(smtpPort), String(sink.port), action], {
        stdio: 'pipe',
        env: { ...process.env, ...env },
      });
    run('start');
    await sleep(1000);
    return {
      port: smtpPort,
      async stop() {
        run('stop');
        await sleep(1000);
      },
    };
  };
}

/**
 * The library floor (bench/floor.mjs) storing each message the least costly
 * durable way: appended to one pre-zeroed file, one fdatasync per batch
 * (group commit), as edge-relay's journal does; `node` runs it, as bench.ts does
 */
export function floorOnCard(
  port: () => Promise<number>,
  node = process.execPath,
  serviceEnv: NodeJS.ProcessEnv = {},
): CardTarget {
  return async (dir, sink, env) => {
    const smtpPort = await port();
    const child = spawn(
      node,
      [path.join(HERE, 'floor.mjs'), String(smtpPort), String(sink.port), dir, 'journal'],
      {
        stdio: ['ignore', 'inherit', 'inherit'],
        env: { ...process.env, ...serviceEnv, ...env },
      },
    );
    await waitListening(smtpPort);
    return {
      port: smtpPort,
      async stop() {
        if (child.exitCode !== null || child.signalCode !== null) return;
        const exited = new Promise((resolve) => child.once('exit', resolve));
        child.kill('SIGTERM');
        await exited;
      },
    };
  };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const which = process.argv[2] ?? path.join(HERE, '..');
  const sink = await startSink(
    Number(process.env.SINK_PORT ?? 25_000 + Math.floor(Math.random() * 20_000)),
  );
  const randomPort = async () => 45_000 + Math.floor(Math.random() * 10_000);
  try {
    const [name, target] =
      which === 'postfix'
        ? ['postfix', postfixOnCard(randomPort)]
        : which === 'floor'
          ? ['floor', floorOnCard(randomPort)]
          : ['edge-relay', edgeRelayOnCard(path.resolve(which))];
    const figures = await cardFigures(target, sink);
    for (const [figure, value] of Object.entries(figures))
      console.log(
        `${name}.${figure} ${value.toFixed(2)} ${CARD_UNITS[figure as keyof CardFigures]}`,
      );
  } finally {
    sink.stop();
  }
}
