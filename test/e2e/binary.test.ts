/**
 * The single executables from `make binary`: each runs alone (a copy in an
 * empty directory, no node on PATH, no node_modules), prints the package
 * version, checks the appliance config, and relays a message to a real
 * upstream over verified STARTTLS. The arm64 one runs under qemu user-mode
 * emulation. Prints size, time to listening and RSS as diagnostics.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import {
  copyFileSync,
  linkSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test, type TestContext } from 'node:test';
import { makeCerts } from '../support/certs.js';
import { ROOT, serveUntilRunning, testConfig } from '../support/relay.js';
import { assertRelaysScanAndStops } from '../support/served-relay.js';
import { startUpstream, type Upstream } from '../support/upstream.js';

const VERSION = (
  JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string }
).version;
const QEMU_LD_PREFIX = '/usr/aarch64-linux-gnu';

interface Target {
  arch: 'x64' | 'arm64';
  /** argv prefix that runs the executable on this machine */
  command: (exe: string) => string[];
  env: NodeJS.ProcessEnv;
}

/** A directory with nothing in it, used as PATH and as working directory; removed at the end */
const temps: string[] = [];
const emptyDir = () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'edge-relay-bin-'));
  temps.push(dir);
  return dir;
};
after(() => temps.forEach((dir) => rmSync(dir, { recursive: true, force: true })));

const TARGETS: Target[] = [
  { arch: 'x64', command: (exe) => [exe], env: {} },
  {
    arch: 'arm64',
    command: (exe) => ['/usr/bin/qemu-aarch64-static', exe],
    env: { QEMU_LD_PREFIX },
  },
];

/**
 * Builds the executables when missing or older than the sources (a no-op
 * otherwise); the lock keeps test files running in parallel from building twice at once
 */
function ensureBuilt(): void {
  mkdirSync(path.join(ROOT, 'dist'), { recursive: true });
  execFileSync('flock', ['dist/.make.lock', 'make', '--no-print-directory', 'binary'], {
    cwd: ROOT,
    stdio: ['ignore', 'ignore', 'inherit'],
    timeout: 600_000,
  });
}

/** Puts the executable alone in an empty directory: a hard link, or a copy across file systems */
function isolate(arch: string): { dir: string; exe: string } {
  const dir = emptyDir();
  const source = path.join(ROOT, 'dist', `edge-relay-linux-${arch}`);
  const exe = path.join(dir, 'edge-relay');
  try {
    linkSync(source, exe);
  } catch {
    copyFileSync(source, exe);
  }
  return { dir, exe };
}

function runOnce(
  argv: string[],
  env: NodeJS.ProcessEnv,
  cwd: string,
): { status: number | null; stdout: string; stderr: string } {
  const [command, ...args] = argv as [string, ...string[]];
  try {
    const stdout = execFileSync(command, args, {
      cwd,
      env,
      encoding: 'utf8',
      timeout: 60_000,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    return { status: 0, stdout, stderr: '' };
  } catch (err) {
    const e = err as { status: number | null; stdout: string; stderr: string };
    return { status: e.status, stdout: e.stdout, stderr: e.stderr };
  }
}

/** Resident memory of a process in MB (for qemu: the emulator and the guest together) */
function rssMb(pid: number): number {
  const kb = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
  return Math.round(Number(kb) / 1024);
}

const MESSAGE = [
  'From: scanner@office.test',
  'To: boss@example.com',
  'Subject: Scan from the single executable',
  'Date: Thu, 26 Nov 2026 10:00:00 +0000',
  'Message-ID: <scan-7@scanner.office.test>',
  '',
  'Page 1 of 1',
  '',
].join('\r\n');

for (const target of TARGETS) {
  describe(`single executable linux-${target.arch}`, { timeout: 120_000 }, () => {
    let exe: string;
    let dir: string;
    let env: NodeJS.ProcessEnv;
    let upstream: Upstream;

    before(async () => {
      ensureBuilt();
      ({ exe, dir } = isolate(target.arch));
      // PATH holds nothing: no node, no npx, no tools
      env = { PATH: emptyDir(), HOME: dir, ...target.env };
      upstream = await startUpstream({ requireTls: true });
    });
    after(async () => {
      await upstream.close();
    });

    test('--version prints the package version', (t: TestContext) => {
      const result = runOnce([...target.command(exe), '--version'], env, dir);
      assert.equal(result.status, 0, result.stderr);
      assert.equal(result.stdout.trim(), VERSION);
      t.diagnostic(`linux-${target.arch}: ${Math.round(statSync(exe).size / 1024 / 1024)} MB`);
    });

    test('config check accepts the appliance config and names its ports', () => {
      const config = path.join(ROOT, 'image/config.json');
      const result = runOnce(
        [...target.command(exe), 'config', 'check', '--config', config],
        env,
        dir,
      );
      assert.equal(result.status, 0, result.stderr);
      assert.match(result.stdout, /0\.0\.0\.0:25\b/);
      assert.match(result.stdout, /\/var\/lib\/edge-relay/);
    });

    test('a bad config exits 2 and names the key', () => {
      const bad = path.join(dir, 'bad.json');
      writeFileSync(bad, JSON.stringify({ smtp: { port: 'twenty-five' } }));
      const result = runOnce(
        [...target.command(exe), 'config', 'check', '--config', bad],
        env,
        dir,
      );
      assert.equal(result.status, 2);
      assert.match(result.stderr, /smtp\.port/);
    });

    test('serve relays a message over verified STARTTLS and stops cleanly on SIGTERM', async (t: TestContext) => {
      const configFile = path.join(dir, 'config.json');
      const smarthost = { host: '127.0.0.1', port: upstream.port, security: 'starttls' };
      const config = testConfig(path.join(dir, 'data'), {
        delivery: {
          mode: 'smarthost',
          smarthost,
          tls: { verify: true, caFile: makeCerts().caFile },
        },
      });
      writeFileSync(configFile, JSON.stringify(config));
      const relay = await serveUntilRunning(
        [...target.command(exe), 'serve', '--config', configFile],
        { env, cwd: dir, timeoutMs: 30_000 },
      );
      try {
        t.diagnostic(
          `linux-${target.arch}: listening after ${Math.round(relay.startupMs)} ms, RSS ${rssMb(relay.child.pid ?? 0)} MB`,
        );
        await assertRelaysScanAndStops(relay, upstream, MESSAGE, { timeoutMs: 30_000 });
      } finally {
        relay.child.kill('SIGKILL');
      }
    });
  });
}
