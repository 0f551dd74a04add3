/**
 * Fault injection for the reliability suite, all real: a tmpfs that fills up,
 * upstreams that misbehave at the socket level, and the relay process's own
 * memory as the kernel reports it.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import net, { type AddressInfo } from 'node:net';
import { SMTPServer } from 'smtp-server';
import { RawSmtp } from './clients.js';
import type { RunningRelay } from './relay.js';
import type { ReceivedMessage } from './upstream.js';
import { eventually } from './wait.js';

/**
 * A device that sends one message per connection until the relay goes away
 * (a power cut); the queue ids that got 250 are pushed onto `acked`
 */
export async function sendUntilPowerCut(
  port: number,
  name: string,
  acked: string[],
  body: (n: number) => string = () => 'scan data '.repeat(200),
): Promise<void> {
  for (let n = 0; n < 10_000; n++) {
    const smtp = await RawSmtp.connect(port).catch(() => undefined);
    if (!smtp) return;
    try {
      await smtp.reply();
      await smtp.command('EHLO device\r\n');
      await smtp.command(`MAIL FROM:<${name}@office.test>\r\n`);
      await smtp.command('RCPT TO:<ops@example.com>\r\n');
      await smtp.command('DATA\r\n');
      const reply = await smtp.command(`Subject: ${name} #${n}\r\n\r\n${body(n)}\r\n.\r\n`);
      const id = /^250 .*queued as ([0-9A-Z]+)/.exec(reply)?.[1];
      if (id) acked.push(id);
    } catch {
      return; // the power went: this message was never acknowledged
    } finally {
      smtp.close();
    }
  }
}

/**
 * Waits until every message a device heard 250 for has reached the upstream;
 * fails naming the missing ones. Returns the duplicates (a power cut may
 * resend) and how many arrived that no device heard 250 for (durable, the
 * reply lost in the cut).
 */
export async function everyAcknowledgedDelivered(
  upstream: { messages: Pick<ReceivedMessage, 'raw'>[] },
  acked: readonly string[],
): Promise<{ duplicates: number; unacknowledged: number }> {
  let missing: string[] = [];
  const counts = await eventually(
    'every acknowledged message at the upstream',
    () => {
      const seen = deliveriesById(upstream.messages);
      missing = acked.filter((id) => !seen.has(id));
      return missing.length === 0 ? seen : undefined;
    },
    { timeoutMs: 60_000 },
  ).catch((err: Error) => {
    throw new Error(`${err.message}; ${missing.length} missing: ${missing.slice(0, 10).join(' ')}`);
  });
  const duplicates = [...counts.values()].reduce((sum, n) => sum + n - 1, 0);
  return {
    duplicates,
    unacknowledged: [...counts.keys()].filter((id) => !acked.includes(id)).length,
  };
}

/** Resident set size of a process in KiB, from /proc/<pid>/status */
export function rssKb(pid: number): number {
  const match = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!match) throw new Error(`No VmRSS for pid ${pid}`);
  return Number(match[1]);
}

/** Proportional set size in KiB (shared pages split among their users) */
export function pssKb(pid: number): number {
  const match = /^Pss:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8'));
  if (!match) throw new Error(`No Pss for pid ${pid}`);
  return Number(match[1]);
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

export function mountTmpfs(dir: string, size: string): void {
  execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${size}`, 'tmpfs', dir]);
}

export function unmount(dir: string): void {
  execFileSync('umount', ['-l', dir]);
}

export interface QueueItem {
  id: string;
  from: string;
  recipients: { address: string; status: string; lastError?: string }[];
  size: number;
  attempts: number;
  nextAttempt: string | null;
  lastError: string | null;
  held: boolean;
}

export async function queueList(relay: Pick<RunningRelay, 'cli'>): Promise<QueueItem[]> {
  const result = await relay.cli(['queue', 'list', '--json']);
  if (result.code !== 0) throw new Error(`queue list failed (${result.code}): ${result.stderr}`);
  return JSON.parse(result.stdout) as QueueItem[];
}

/** The relay's queue id, from the Received header it puts first */
export function relayQueueId(message: Pick<ReceivedMessage, 'raw'>): string | undefined {
  return /with [A-Z]+ id ([0-9A-Z]+)/.exec(message.raw.subarray(0, 2048).toString('latin1'))?.[1];
}

/** How often each queue id reached the upstream */
export function deliveriesById(
  messages: readonly Pick<ReceivedMessage, 'raw'>[],
): Map<string, number> {
  const counts = new Map<string, number>();
  for (const message of messages) {
    const id = relayQueueId(message) ?? '?';
    counts.set(id, (counts.get(id) ?? 0) + 1);
  }
  return counts;
}

/** A port on loopback where nothing listens (connections are refused) */
export async function refusedPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/**
 * Upstreams that break in one specific way, written at the socket level
 * because a well-behaved SMTP library can't be made to misbehave like this.
 */
export type BadBehaviour =
  /** Accepts the TCP connection and never says a word */
  | 'silent'
  /** 421 at the greeting, then closes */
  | 'greet421'
  /** 554 at the greeting, then waits for QUIT (a host that refuses service for now) */
  | 'greet554'
  /** A normal dialogue until DATA's 354, then drops the connection after the first data bytes */
  | 'dropMidData'
  /** A prompt greeting, then every reply one byte every `slowMs` */
  | 'slow'
  /** Takes the whole message, then never answers the final dot */
  | 'hangAfterData'
  /** Answers 250 to the message, then drops the connection before QUIT */
  | 'dropAfter250';

export interface BadUpstream {
  port: number;
  /** TCP connections it accepted */
  connections: number;
  /** Times a client got as far as sending message data */
  dataStarts: number;
  /** Messages it answered 250 to */
  accepted: number;
  close(): Promise<void>;
}

export async function startBadUpstream(
  behaviour: BadBehaviour,
  options: { slowMs?: number } = {},
): Promise<BadUpstream> {
  const sockets = new Set<net.Socket>();
  const stats = { connections: 0, dataStarts: 0, accepted: 0 };
  const server = net.createServer((socket) => {
    stats.connections++;
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
    converse(socket, behaviour, options.slowMs ?? 1000, stats);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    get connections() {
      return stats.connections;
    },
    get dataStarts() {
      return stats.dataStarts;
    },
    get accepted() {
      return stats.accepted;
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

function converse(
  socket: net.Socket,
  behaviour: BadBehaviour,
  slowMs: number,
  stats: { dataStarts: number; accepted: number },
): void {
  if (behaviour === 'silent') return;
  if (behaviour === 'greet421') {
    socket.end('421 4.3.2 upstream.test Service not available, closing channel\r\n');
    return;
  }
  if (behaviour === 'greet554') {
    socket.write('554 5.3.2 upstream.test No SMTP service here\r\n');
    socket.on('data', () => socket.end('221 2.0.0 Bye\r\n'));
    return;
  }
  socket.write('220 upstream.test ESMTP\r\n');
  const say =
    behaviour === 'slow' ? slowWriter(socket, slowMs) : (text: string) => void socket.write(text);
  let inData = false;
  let buffer = '';
  socket.on('data', (chunk: Buffer) => {
    buffer += chunk.toString('latin1');
    if (inData) {
      if (behaviour === 'dropMidData') return void socket.destroy();
      if (!buffer.includes('\r\n.\r\n') || behaviour === 'hangAfterData') return;
      stats.accepted++;
      if (behaviour === 'dropAfter250') {
        socket.removeAllListeners('data');
        return void socket.end('250 2.0.0 Ok: queued\r\n');
      }
      inData = false;
      buffer = buffer.slice(buffer.indexOf('\r\n.\r\n') + 5);
      say('250 2.0.0 Ok: queued\r\n');
    }
    let end: number;
    while (!inData && (end = buffer.indexOf('\r\n')) >= 0) {
      const line = buffer.slice(0, end).toUpperCase();
      buffer = buffer.slice(end + 2);
      if (line.startsWith('EHLO')) say('250-upstream.test\r\n250 8BITMIME\r\n');
      else if (line.startsWith('QUIT')) return void socket.end('221 Bye\r\n');
      else if (line === 'DATA') {
        inData = true;
        stats.dataStarts++;
        say('354 Go ahead\r\n');
      } else say('250 Ok\r\n');
    }
    // Message bytes that came in the same packet as DATA
    if (inData && buffer) socket.emit('data', Buffer.alloc(0));
  });
}

/** Sends text one byte at a time, `delayMs` apart (a link at a few bytes per second) */
function slowWriter(socket: net.Socket, delayMs: number): (text: string) => void {
  let queue = '';
  let timer: NodeJS.Timeout | undefined;
  const tick = () => {
    if (socket.destroyed || queue === '') {
      timer = undefined;
      return;
    }
    socket.write(queue[0] ?? '');
    queue = queue.slice(1);
    timer = setTimeout(tick, delayMs);
  };
  socket.on('close', () => clearTimeout(timer));
  return (text) => {
    queue += text;
    timer ??= setTimeout(tick, delayMs);
  };
}

/**
 * A plain upstream that keeps counting while its clients are killed under it
 * (the shared test upstream has no listener for the connection resets a
 * kill -9 causes). Records only what the power-cut tests need.
 */
export async function startCountingUpstream(): Promise<{
  port: number;
  messages: Pick<ReceivedMessage, 'raw'>[];
  close(): Promise<void>;
}> {
  const messages: Pick<ReceivedMessage, 'raw'>[] = [];
  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ['AUTH', 'STARTTLS'],
    logger: false,
    disableReverseLookup: true,
    onData(stream, _session, callback) {
      const chunks: Buffer[] = [];
      stream.on('data', (chunk: Buffer) => chunks.push(chunk));
      stream.on('end', () => {
        messages.push({ raw: Buffer.concat(chunks) });
        callback(null, 'Ok: accepted by counting upstream');
      });
    },
  });
  server.on('error', () => undefined);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  return {
    port: (server.server.address() as AddressInfo).port,
    messages,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
