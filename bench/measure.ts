/**
 * Measuring tools for the benchmark: Postfix's smtp-source as the load
 * generator, smtp-sink as the final destination, and a sampler that follows
 * the memory of a whole process tree (Postfix is many processes, edge-relay one).
 */
import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import net from 'node:net';

/** Children of every pid in `roots`, recursively, from /proc */
export function processTree(roots: number[]): number[] {
  const parent = new Map<number, number>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      parent.set(Number(name), Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]));
    } catch {
      // gone already
    }
  }
  const tree = new Set(roots);
  for (let grew = true; grew; ) {
    grew = false;
    for (const [pid, ppid] of parent) {
      if (tree.has(ppid) && !tree.has(pid)) {
        tree.add(pid);
        grew = true;
      }
    }
  }
  return [...tree];
}

function kbField(file: string, field: RegExp): number {
  try {
    return Number(field.exec(readFileSync(file, 'utf8'))?.[1] ?? 0);
  } catch {
    return 0;
  }
}

export const rssKb = (pid: number) => kbField(`/proc/${pid}/status`, /^VmRSS:\s+(\d+) kB/m);
export const hwmKb = (pid: number) => kbField(`/proc/${pid}/status`, /^VmHWM:\s+(\d+) kB/m);
export const pssKb = (pid: number) => kbField(`/proc/${pid}/smaps_rollup`, /^Pss:\s+(\d+) kB/m);

export interface MemoryPeak {
  rssKb: number;
  pssKb: number;
}

/** Samples the summed RSS and PSS of a process tree every `everyMs` until stopped; keeps the peaks */
export function sampleMemory(roots: () => number[], everyMs = 20): { stop(): MemoryPeak } {
  const peak: MemoryPeak = { rssKb: 0, pssKb: 0 };
  const timer = setInterval(() => {
    const pids = processTree(roots());
    peak.rssKb = Math.max(
      peak.rssKb,
      pids.reduce((sum, pid) => sum + rssKb(pid), 0),
    );
    peak.pssKb = Math.max(
      peak.pssKb,
      pids.reduce((sum, pid) => sum + pssKb(pid), 0),
    );
  }, everyMs);
  return {
    stop() {
      clearInterval(timer);
      return peak;
    },
  };
}

export const treeRssKb = (roots: number[]) =>
  processTree(roots).reduce((sum, pid) => sum + rssKb(pid), 0);

/** Runs smtp-source; resolves with the wall time in ms */
export function smtpSource(
  port: number,
  options: { sessions: number; messages: number; bytes: number },
): Promise<number> {
  const args = [
    '-s',
    String(options.sessions),
    '-m',
    String(options.messages),
    '-l',
    String(options.bytes),
    '-f',
    'device@bench.lan',
    '-t',
    'archive@example.com',
    '-M',
    'bench.lan',
    `127.0.0.1:${port}`,
  ];
  const started = process.hrtime.bigint();
  return new Promise((resolve, reject) => {
    execFile('smtp-source', args, { timeout: 600_000 }, (err, _stdout, stderr) => {
      if (err)
        return reject(new Error(`smtp-source ${args.join(' ')} failed: ${stderr || err.message}`));
      resolve(Number(process.hrtime.bigint() - started) / 1e6);
    });
  });
}

/** smtp-sink on loopback, counting the messages it has taken */
export interface Sink {
  port: number;
  count(): number;
  /** Resolves with the time (ms, hrtime) at which the count reached `n` */
  waitFor(n: number, timeoutMs: number): Promise<number>;
  stop(): void;
}

export async function startSink(port: number): Promise<Sink> {
  const child: ChildProcess = spawn(
    'smtp-sink',
    ['-u', 'postfix', '-c', `127.0.0.1:${port}`, '1000'],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let count = 0;
  let tail = '';
  child.stdout!.on('data', (d: Buffer) => {
    tail = (tail + d.toString()).slice(-200);
    const all = [...tail.matchAll(/mesg=(\d+)/g)];
    if (all.length) count = Number(all.at(-1)![1]);
  });
  await new Promise((resolve) => setTimeout(resolve, 300));
  if (child.exitCode !== null) throw new Error('smtp-sink did not start');
  return {
    port,
    count: () => count,
    async waitFor(n, timeoutMs) {
      const deadline = Date.now() + timeoutMs;
      while (count < n) {
        if (Date.now() > deadline)
          throw new Error(`Sink got ${count} of ${n} messages in ${timeoutMs} ms`);
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
      return Number(process.hrtime.bigint()) / 1e6;
    },
    stop: () => void child.kill(),
  };
}

export const nowMs = () => Number(process.hrtime.bigint()) / 1e6;

/**
 * Drops an executable's pages from the page cache, as after a boot. How many
 * of its pages a process maps depends on how the file sits in the cache: a
 * file just written in one piece (a fresh build, a private copy) is cached in
 * large folios, and a process mapping it shows up to 35 MB more resident
 * (clean pages of the file, not memory the relay uses).
 */
export function coldCache(file: string): void {
  execFileSync('sync', [file]);
  execFileSync('dd', [`if=${file}`, 'iflag=nocache', 'count=0', 'status=none']);
}

/** Resolves once something accepts connections on 127.0.0.1:`port` (tried for 10 s) */
export async function waitListening(port: number): Promise<void> {
  for (let i = 0; i < 100; i++) {
    const ok = await new Promise<boolean>((resolve) => {
      const socket = net.connect(
        { port, host: '127.0.0.1' },
        () => (socket.destroy(), resolve(true)),
      );
      socket.on('error', () => resolve(false));
    });
    if (ok) return;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`Nothing listening on 127.0.0.1:${port}`);
}
