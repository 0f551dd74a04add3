/**
 * The relay comes back after a power cut. What a crash leaves in the data dir
 * (the server's lock, message locks) names processes by pid, and after a
 * reboot, or as pid 1 in a container, that pid belongs to another process or
 * to the relay itself: none of it may keep mail stopped or signal a stranger.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readlinkSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { smtplibSend } from '../support/clients.js';
import { queueList } from '../support/faults.js';
import { freePort } from '../support/ports.js';
import {
  BIN,
  runCli,
  serveUntilRunning,
  launchRelay,
  testConfig,
  type ServedProcess,
} from '../support/relay.js';
import { startUpstream } from '../support/upstream.js';
import { eventually } from '../support/wait.js';

/** Mail for the smarthost at `port`, which is down until a test starts it */
const upstreamDownAt = (port: number, delay: string) => ({
  delivery: {
    smarthost: { host: '127.0.0.1', port, security: 'none' },
    retry: { delays: [delay], maxAge: '5d' },
  },
});

async function queueOneMessage(relay: {
  smtpPort: number;
  cli: (args: string[]) => ReturnType<typeof runCli>;
}): Promise<string> {
  await smtplibSend(
    relay.smtpPort,
    'ups@office.test',
    ['ops@example.com'],
    'Subject: after the power cut\r\n\r\nOn battery\r\n',
  );
  const item = await eventually(
    'a deferred message',
    async () => (await queueList(relay)).find((i) => i.attempts >= 1),
    { timeoutMs: 15_000 },
  );
  return item.id;
}

/** `sleep 30`: a live process that is not the relay; a signal meant for the relay would kill it */
async function stranger(): Promise<ChildProcess & { pid: number }> {
  const child = spawn('sleep', ['30'], { stdio: 'ignore' });
  await once(child, 'spawn');
  return child as ChildProcess & { pid: number };
}

/** A lock's record; empty when there is none (an earlier version kept none) */
function recordOf(file: string): string {
  try {
    return readlinkSync(file);
  } catch {
    return '';
  }
}

/** Replaces a lock's record, as a crash or an earlier version left it */
function leaveLock(file: string, record: string): void {
  rmSync(file, { force: true });
  symlinkSync(record, file);
}

test('after a power cut a pid now held by another process neither stops serve nor gets that process signalled', async () => {
  const config = upstreamDownAt(await freePort(), '1h');
  const first = await launchRelay({ config });
  const id = await queueOneMessage(first);
  await first.kill();
  // After the reboot `sleep` has the pid: in the server's lock (its start time and boot are the dead relay's) and in an earlier version's pid file
  const sleeper = await stranger();
  const serveLock = path.join(first.dataDir, 'serve.lock');
  const oldPidFile = path.join(first.dataDir, 'edge-relay.pid');
  const [, ticks = '1', bootId = '0'] = recordOf(serveLock).split(':');
  leaveLock(serveLock, `${sleeper.pid}:${ticks}:${bootId}`);
  writeFileSync(oldPidFile, String(sleeper.pid));
  const exited = once(sleeper, 'exit');
  try {
    const retry = await first.cli(['queue', 'retry', id]);
    assert.equal(retry.code, 0, retry.stderr);

    const second = await launchRelay({ config, dir: first.dir });
    try {
      const takeover = await second.waitForLog(
        (l) => l.msg === 'Took over a lock whose holder no longer runs',
      );
      assert.equal(takeover.lock, serveLock);
      assert.equal(readlinkSync(serveLock).split(':')[0], String(second.process.pid));
      assert.equal(existsSync(oldPidFile), false, "an earlier version's pid file is removed");
      const attempts = async () => (await queueList(second))[0]?.attempts;
      await eventually(
        'the attempt asked for while the relay was down',
        async () => (await attempts()) === 2,
        { timeoutMs: 10_000 },
      );
      // The CLI still finds the real server: a retry is tried at once, not in an hour
      assert.equal((await second.cli(['queue', 'retry', id])).code, 0);
      await eventually('an attempt after the nudge', async () => (await attempts()) === 3, {
        timeoutMs: 10_000,
      });
    } finally {
      assert.equal(await second.stop(), 0);
    }
  } finally {
    sleeper.kill('SIGTERM');
  }
  const [, signal] = await exited;
  assert.equal(signal, 'SIGTERM', 'the stranger was never signalled');
});

/** The relay's pid outside its namespace: unshare's only child (unshare itself holds SIGTERM back while it waits) */
function relayPid(unshare: ChildProcess): number {
  const pid = Number(
    readFileSync(`/proc/${unshare.pid}/task/${unshare.pid}/children`, 'utf8')
      .trim()
      .split(/\s+/)[0],
  );
  // Never 0 or 1: kill(0) would signal this test's own process group
  if (!(pid > 1)) throw new Error(`No relay found under unshare (pid ${unshare.pid})`);
  return pid;
}

/** Its exit status, or an error with its output when it does not exit in time (the namespace is then killed) */
async function exitOf(served: ServedProcess, ms = 20_000): Promise<number | null> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      served.child.kill('SIGKILL');
      reject(
        new Error(`Still running ${ms} ms after the signal:\n${served.output().slice(-3000)}`),
      );
    }, ms);
  });
  try {
    return await Promise.race([served.exited, late]);
  } finally {
    clearTimeout(timer);
  }
}

const canUnshare =
  spawnSync('unshare', ['--user', '--map-root-user', '--pid', '--fork', '--mount-proc', 'true'])
    .status === 0;

test(
  'as pid 1 in a container: killed with -9 mid-delivery, it starts again as pid 1 and delivers',
  { skip: !canUnshare && 'needs unprivileged user and pid namespaces (unshare)' },
  async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'edge-relay-test-'));
    const dataDir = path.join(dir, 'data');
    const configFile = path.join(dir, 'config.json');
    const upstreamPort = await freePort();
    writeFileSync(
      configFile,
      JSON.stringify(testConfig(dataDir, upstreamDownAt(upstreamPort, '1s'))),
    );
    mkdirSync(dataDir);
    const container = [
      'unshare',
      '--user',
      '--map-root-user',
      '--pid',
      '--fork',
      '--mount-proc',
      '--kill-child',
      process.execPath,
      BIN,
      'serve',
      '--config',
      configFile,
    ];
    const cli = (args: string[]) => runCli([...args, '--config', configFile]);

    const first = await serveUntilRunning(container, { cwd: dir, timeoutMs: 20_000 });
    await queueOneMessage({ smtpPort: first.smtpPort, cli });
    const record = readlinkSync(path.join(dataDir, 'serve.lock'));
    assert.match(record, /^1:\d+:[0-9a-f-]+$/, 'the relay is pid 1 in its namespace');
    // kill -9 the relay itself, mid-delivery; message locks live in the server's memory, so only serve.lock stays behind
    process.kill(relayPid(first.child), 'SIGKILL');
    await exitOf(first);

    const upstream = await startUpstream({ port: upstreamPort });
    const second = await serveUntilRunning(container, { cwd: dir, timeoutMs: 20_000 });
    try {
      await upstream.waitFor(1, 15_000);
      const takeover = second
        .output()
        .split('\n')
        .find((line) => line.includes('Took over a lock whose holder no longer runs'));
      assert.ok(takeover?.includes(`"holder":"${record}"`), second.output());
      assert.notEqual(
        readlinkSync(path.join(dataDir, 'serve.lock')),
        record,
        'pid 1 again, another start time',
      );
    } finally {
      process.kill(relayPid(second.child), 'SIGTERM');
      assert.equal(await exitOf(second), 0);
      await upstream.close();
    }
  },
);
