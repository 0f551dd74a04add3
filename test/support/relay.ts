/**
 * Runs the real product for tests: `bin/edge-relay serve` in a child process
 * with a config file in a fresh temp dir, on ports chosen by the OS (port 0).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const BIN = path.join(ROOT, 'bin/edge-relay');

export interface LogLine {
  level: number;
  msg: string;
  [key: string]: unknown;
}

export interface RunningRelay {
  dir: string;
  configFile: string;
  dataDir: string;
  smtpPort: number;
  pop3Port: number | undefined;
  webPort: number | undefined;
  process: ChildProcess;
  logs: LogLine[];
  /** Raw stdout + stderr, for assertions that nothing secret was printed */
  output: () => string;
  waitForLog(match: (line: LogLine) => boolean, timeoutMs?: number): Promise<LogLine>;
  stop(): Promise<number | null>;
  kill(): Promise<void>;
  cli(args: string[], stdin?: string): Promise<CliResult>;
}

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Base test config: every listener on loopback, port 0; deep-merged with `overrides` by the product */
export function testConfig(
  dataDir: string,
  overrides: Record<string, unknown> = {},
): Record<string, unknown> {
  const base = {
    hostname: 'relay.test',
    dataDir,
    smtp: { host: '127.0.0.1', port: 0 },
    pop3: { host: '127.0.0.1', port: 0 },
    web: { host: '127.0.0.1', port: 0 },
    mailbox: { localDomains: ['relay.test'] },
    delivery: { retry: { delays: ['1s'], maxAge: '5d' } },
  };
  return merge(base, overrides);
}

function merge(a: Record<string, unknown>, b: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...a };
  for (const [k, v] of Object.entries(b)) {
    const prev = out[k];
    out[k] =
      v &&
      typeof v === 'object' &&
      !Array.isArray(v) &&
      prev &&
      typeof prev === 'object' &&
      !Array.isArray(prev)
        ? merge(prev as Record<string, unknown>, v as Record<string, unknown>)
        : v;
  }
  return out;
}

export function runCli(
  args: string[],
  options: { stdin?: string; cwd?: string; env?: NodeJS.ProcessEnv } = {},
): Promise<CliResult> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [BIN, ...args], {
      cwd: options.cwd ?? ROOT,
      env: options.env ?? process.env,
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.stdin.end(options.stdin ?? '');
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/** A test file that dies must not leave relays running behind it */
const running = new Set<ChildProcess>();
process.once('exit', () => running.forEach((child) => child.kill('SIGKILL')));

export interface LaunchOptions {
  config?: Record<string, unknown>;
  /** Reuse a directory (restart after a crash) */
  dir?: string;
  env?: NodeJS.ProcessEnv;
  /** The node binary to run it with (the benchmark uses a private copy) */
  node?: string;
}

export async function launchRelay(options: LaunchOptions = {}): Promise<RunningRelay> {
  const dir = options.dir ?? mkdtempSync(path.join(tmpdir(), 'edge-relay-test-'));
  const dataDir = path.join(dir, 'data');
  const configFile = path.join(dir, 'config.json');
  writeFileSync(configFile, JSON.stringify(testConfig(dataDir, options.config), null, 2));
  const child = spawn(options.node ?? process.execPath, [BIN, 'serve', '--config', configFile], {
    cwd: dir,
    env: { ...process.env, ...options.env },
  });
  const logs: LogLine[] = [];
  const waiters: (() => void)[] = [];
  let raw = '';
  let pending = '';
  const onText = (text: string) => {
    raw += text;
    pending += text;
    const lines = pending.split('\n');
    pending = lines.pop() ?? '';
    for (const line of lines) {
      try {
        logs.push(JSON.parse(line) as LogLine);
      } catch {
        logs.push({ level: 0, msg: line });
      }
    }
    waiters.splice(0).forEach((wake) => wake());
  };
  child.stdout.on('data', (d: Buffer) => onText(d.toString()));
  child.stderr.on('data', (d: Buffer) => onText(d.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  running.add(child);
  void exited.then(() => running.delete(child));

  const waitForLog = (match: (line: LogLine) => boolean, timeoutMs = 15_000) =>
    new Promise<LogLine>((resolve, reject) => {
      const timer = setTimeout(
        () =>
          reject(new Error(`Log line not seen in ${timeoutMs} ms. Output:\n${raw.slice(-4000)}`)),
        timeoutMs,
      );
      const check = () => {
        const found = logs.find(match);
        if (found) {
          clearTimeout(timer);
          resolve(found);
        } else waiters.push(check);
      };
      void exited.then(() => {
        if (!logs.find(match)) {
          clearTimeout(timer);
          reject(new Error(`Relay exited. Output:\n${raw.slice(-4000)}`));
        }
      });
      check();
    });

  const ready = await waitForLog((l) => l.msg === 'edge-relay is running');
  const portOf = (value: unknown) =>
    typeof value === 'string' ? Number(value.split(':').pop()) : undefined;
  return {
    dir,
    configFile,
    dataDir,
    smtpPort: portOf(ready.smtp) ?? 0,
    pop3Port: portOf(ready.pop3),
    webPort: portOf(ready.web),
    process: child,
    logs,
    output: () => raw,
    waitForLog,
    async stop() {
      child.kill('SIGTERM');
      return exited;
    },
    async kill() {
      child.kill('SIGKILL');
      await exited;
    },
    cli: (args, stdin) => runCli([...args, '--config', configFile], { stdin, cwd: dir }),
  };
}

/** The texts of the unread messages in a local mailbox ([] while it has none) */
export function newMail(relay: Pick<RunningRelay, 'dataDir'>, mailbox: string): string[] {
  const dir = path.join(relay.dataDir, 'mailboxes', mailbox, 'new');
  if (!existsSync(dir)) return [];
  return readdirSync(dir).map((file) => readFileSync(path.join(dir, file), 'utf8'));
}

export interface ServedProcess {
  child: ChildProcess;
  /** The "edge-relay is running" log record: listening addresses, data dir */
  running: Record<string, unknown>;
  smtpPort: number;
  startupMs: number;
  output: () => string;
  exited: Promise<number | null>;
}

/**
 * Starts a command that runs the relay (a single executable, a chroot, an
 * emulator) and resolves once it logs that it is running.
 */
export function serveUntilRunning(
  argv: string[],
  options: { cwd?: string; env?: NodeJS.ProcessEnv; timeoutMs: number },
): Promise<ServedProcess> {
  const [command, ...args] = argv as [string, ...string[]];
  const started = performance.now();
  const child = spawn(command, args, {
    cwd: options.cwd,
    env: options.env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let raw = '';
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`Not running after ${options.timeoutMs} ms:\n${raw}`)),
      options.timeoutMs,
    );
    void exited.then((code) => reject(new Error(`Exited with ${code} before running:\n${raw}`)));
    let found = false;
    const onData = (d: Buffer) => {
      raw += d.toString();
      // Once found, stop looking: searching the whole output again on every chunk grew with the
      // square of what the relay logged, and took CPU from the relay under load in `make bench`
      if (found) return;
      const line = raw.split('\n').find((l) => l.includes('"edge-relay is running"'));
      if (!line) return;
      found = true;
      clearTimeout(timer);
      const running = JSON.parse(line) as Record<string, unknown>;
      const smtpPort = Number(String(running.smtp).split(':').pop());
      resolve({
        child,
        running,
        smtpPort,
        startupMs: performance.now() - started,
        output: () => raw,
        exited,
      });
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
  });
}
