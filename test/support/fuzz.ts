/**
 * A seeded, grammar-based SMTP session fuzzer. Every session is a list of
 * chunks built from a small grammar of real commands mixed with the hostile
 * input devices and scanners actually send: binary noise, NUL bytes, huge
 * lines, commands out of order, absurd parameters, broken AUTH, and pipelined
 * junk. The same seed always gives the same sessions, so a failure can be
 * replayed with FUZZ_SEED.
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { isAlive } from './faults.js';
import type { RunningRelay } from './relay.js';

/** mulberry32: tiny, fast and good enough to drive a fuzzer */
export class Rng {
  private state: number;

  constructor(seed: number) {
    this.state = seed >>> 0;
  }

  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  int(max: number): number {
    return Math.floor(this.next() * max);
  }

  chance(p: number): boolean {
    return this.next() < p;
  }

  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)] as T;
  }

  bytes(length: number): Buffer {
    const out = Buffer.allocUnsafe(length);
    for (let i = 0; i < length; i++) out[i] = this.int(256);
    return out;
  }
}

/** What the fuzzer should lean on; sizes are scaled down in `make test`, up in `make soak` */
export interface FuzzProfile {
  /** Probability that a session carries a 2 MB line without a newline */
  hugeLine: number;
  /** Probability that a session carries a 100 KB address */
  hugeAddress: number;
}

const CRLF = '\r\n';
const VERBS = [
  'HELO',
  'EHLO',
  'MAIL FROM:',
  'RCPT TO:',
  'DATA',
  'RSET',
  'NOOP',
  'VRFY',
  'EXPN',
  'HELP',
  'AUTH',
  'STARTTLS',
  'BDAT',
  'ETRN',
  'TURN',
  'XCLIENT',
  'XFORWARD',
];
const HOSTS = [
  'printer.lan',
  'x',
  '[127.0.0.1]',
  '[IPv6:::1]',
  '',
  'a'.repeat(300),
  'héllo.lan',
  '<script>alert(1)</script>',
  '-',
  '...',
];
const SIZES = [
  '0',
  '1',
  '-1',
  '99999999999999999999999',
  'NaN',
  '1e309',
  '0x10',
  ' ',
  '52428801',
  '9007199254740993',
  'abc',
];

/** Addresses a device, a broken device or an attacker might put in MAIL or RCPT */
function address(rng: Rng, profile: FuzzProfile): string {
  if (rng.chance(profile.hugeAddress)) return `${'a'.repeat(100 * 1024)}@example.com`;
  return rng.pick([
    'someone@example.com',
    'ops@example.com',
    '',
    'postmaster',
    'postmaster@relay.test',
    'nobody@relay.test',
    '@a,@b:user@example.com',
    'user%other.example@example.com',
    'host!user@example.com',
    '"quoted local"@example.com',
    '"a@b"@example.com',
    'user@[127.0.0.1]',
    'user@[IPv6:::1]',
    'user@@example.com',
    'user@',
    `user\u0000@example.com`,
    'üser@exämple.com',
    `${'x'.repeat(70)}@example.com`,
    `u@${'d'.repeat(300)}.com`,
    '<nested>@example.com',
    'user@example.com>junk',
  ]);
}

/** Strings that are not valid SASL responses: bad padding, bad alphabet, binary, cancel, empty */
export function base64Junk(rng: Rng): string {
  return rng.pick([
    '====',
    'AGZvbwBiYXI',
    '%%%%',
    Buffer.from('\0\0\0').toString('base64'),
    'dGVzdA==extra',
    rng.bytes(20).toString('latin1'),
    '*',
    '',
  ]);
}

/** One protocol step: the text of zero or more command lines */
function step(rng: Rng, profile: FuzzProfile): string | Buffer {
  switch (rng.int(16)) {
    case 0:
      return `${rng.pick(['EHLO', 'HELO', 'ehlo', 'HeLo'])} ${rng.pick(HOSTS)}${CRLF}`;
    case 1:
    case 2: {
      const params = rng.chance(0.4)
        ? ` SIZE=${rng.pick(SIZES)}`
        : rng.chance(0.2)
          ? ` BODY=${rng.pick(['8BITMIME', 'BINARYMIME', 'x'])} AUTH=<> RET=HDRS`
          : '';
      return `${rng.pick(['MAIL FROM:', 'mail from:', 'MAIL FROM: ', 'MAIL FROM'])}<${address(rng, profile)}>${params}${CRLF}`;
    }
    case 3:
    case 4:
      return `${rng.pick(['RCPT TO:', 'rcpt to:', 'RCPT TO: ', 'RCPT'])}<${address(rng, profile)}>${rng.chance(0.1) ? ' NOTIFY=NEVER ORCPT=rfc822;x' : ''}${CRLF}`;
    case 5:
      return `DATA${CRLF}${body(rng)}${CRLF}.${CRLF}`;
    case 6:
      return `AUTH PLAIN ${base64Junk(rng)}${CRLF}`;
    case 7:
      return `AUTH LOGIN${CRLF}${base64Junk(rng)}${CRLF}${base64Junk(rng)}${CRLF}`;
    case 8:
      return `${rng.pick(['AUTH CRAM-MD5', 'AUTH XOAUTH2 x', 'AUTH', 'AUTH GSSAPI'])}${CRLF}*${CRLF}`;
    case 9:
      // STARTTLS is off on intake; what follows it is a raw TLS hello or garbage
      return Buffer.concat([
        Buffer.from(`STARTTLS${CRLF}`),
        Buffer.from([0x16, 0x03, 0x01, 0x00, 0xa5, 0x01]),
        rng.bytes(rng.int(200)),
        Buffer.from(CRLF),
      ]);
    case 10:
      return Buffer.concat([rng.bytes(1 + rng.int(2000)), Buffer.from(CRLF)]);
    case 11:
      return `${rng.pick(VERBS)}\u0000${'\u0000'.repeat(rng.int(50))}${rng.pick(VERBS)}${CRLF}`;
    case 12:
      return `${rng.pick(VERBS)} ${'A'.repeat(1 + rng.int(40_000))}${CRLF}`;
    case 13:
      return `BDAT ${rng.pick(['10', '-1', '999999999999', 'x', '0 LAST'])}${CRLF}${rng.bytes(rng.int(20)).toString('latin1')}`;
    case 14:
      return `${rng.pick(['RSET', 'NOOP', 'VRFY postmaster', 'EXPN all', 'HELP', 'TURN', 'ETRN x', 'XCLIENT ADDR=1.2.3.4', 'QUIT '])}${CRLF}`;
    default:
      // Pipelined junk: many short lines at once
      return (
        Array.from(
          { length: 1 + rng.int(60) },
          () =>
            rng.pick(VERBS) +
            ' ' +
            rng
              .bytes(rng.int(30))
              .toString('latin1')
              .replace(/[\r\n]/g, ''),
        ).join(CRLF) + CRLF
      );
  }
}

function body(rng: Rng): string {
  const lines = Array.from({ length: rng.int(20) }, () =>
    rng.pick([
      'Subject: fuzz',
      '.',
      '..',
      '.\r',
      'From: <x@y>',
      '',
      'a'.repeat(rng.int(3000)),
      rng.bytes(rng.int(100)).toString('latin1').replace(/\n/g, ''),
    ]),
  );
  return lines.join(rng.chance(0.3) ? '\n' : CRLF);
}

/** A whole session: a start that usually gets a transaction going, then random steps */
export function session(rng: Rng, profile: FuzzProfile): Buffer[] {
  const chunks: Buffer[] = [];
  if (rng.chance(0.7)) chunks.push(Buffer.from(`EHLO fuzz${CRLF}`));
  if (rng.chance(0.5))
    chunks.push(
      Buffer.from(`MAIL FROM:<fuzz@example.com>${CRLF}RCPT TO:<someone@example.com>${CRLF}`),
    );
  const count = 1 + rng.int(12);
  for (let i = 0; i < count; i++) {
    const s = step(rng, profile);
    chunks.push(typeof s === 'string' ? Buffer.from(s, 'latin1') : s);
  }
  if (rng.chance(profile.hugeLine)) chunks.push(Buffer.alloc(2 * 1024 * 1024, 'Z'));
  // Leave any DATA or AUTH state, then say goodbye, so a well-behaved server closes
  chunks.push(Buffer.from(`${CRLF}.${CRLF}*${CRLF}QUIT${CRLF}`));
  return chunks;
}

/** What came back on one connection */
export interface SessionResult {
  /** Every byte the server sent */
  raw: Buffer;
  replies: string[];
  /** Bytes after the last CRLF (a reply cut off mid-line) */
  trailing: string;
  /** The server did not close the connection within the wait */
  hung: boolean;
  error: string | undefined;
}

export interface PlayOptions {
  /** How long to wait for the server to close the connection */
  closeWaitMs: number;
  localAddress?: string;
  /** Hang up abruptly this many ms after the last chunk is written (a device losing power mid-command) */
  dropAfterMs?: number;
}

/**
 * Plays a session: chunks are written one after another (pipelined, as junk
 * usually arrives), then we wait for the server to close the connection, or
 * drop it ourselves.
 */
export function play(port: number, chunks: Buffer[], options: PlayOptions): Promise<SessionResult> {
  return new Promise((resolve) => {
    const received: Buffer[] = [];
    let error: string | undefined;
    let hung = false;
    const socket = net.connect({ port, host: '127.0.0.1', localAddress: options.localAddress });
    const timer = setTimeout(() => {
      hung = true;
      socket.destroy();
    }, options.closeWaitMs);
    socket.on('data', (d: Buffer) => received.push(d));
    socket.on('error', (err: NodeJS.ErrnoException) => (error = err.code ?? err.message));
    socket.on('connect', async () => {
      await writeAll(socket, chunks);
      const drop = options.dropAfterMs;
      if (drop !== undefined) setTimeout(() => socket.destroy(), drop);
    });
    socket.on('close', () => {
      clearTimeout(timer);
      const raw = Buffer.concat(received);
      const parts = raw.toString('latin1').split(CRLF);
      resolve({ raw, replies: parts.slice(0, -1), trailing: parts.at(-1) ?? '', hung, error });
    });
  });
}

async function writeAll(socket: net.Socket, chunks: Buffer[]): Promise<void> {
  for (const chunk of chunks) {
    if (socket.destroyed) return;
    if (!socket.write(chunk))
      await new Promise((resolve) => socket.once('drain', resolve).once('close', resolve));
  }
}

/** RFC 5321 4.2: "NNN text" or "NNN-text", printable text, at most 512 octets with CRLF */
const REPLY_LINE = /^[2-5][0-5]\d([ -][\t\x20-\x7e]*)?$/;

export function badReplyLines(result: SessionResult): string[] {
  const bad = result.replies.filter((line) => !REPLY_LINE.test(line) || line.length > 510);
  if (result.trailing) bad.push(`(cut off) ${result.trailing}`);
  return bad.map((line) =>
    JSON.stringify(line.length > 200 ? `${line.slice(0, 200)}... (${line.length} chars)` : line),
  );
}

/** Queue ids from "250 ... queued as ID" replies */
export const queuedIds = (result: SessionResult): string[] =>
  result.replies.flatMap((line) => /^250 .*queued as ([0-9A-Z]+)/.exec(line)?.[1] ?? []);

/** What every fuzzer checks first: all sessions were played and the relay is still the same running process */
export function assertSurvived(
  relay: Pick<RunningRelay, 'process'>,
  played: number,
  planned: number,
): void {
  assert.equal(played, planned);
  assert.ok(isAlive(relay.process.pid!), 'relay still running');
  assert.equal(relay.process.exitCode, null);
}

/** After a run: if the relay died, its last words belong in the test output */
export function reportIfExited(
  name: string,
  relay: Pick<RunningRelay, 'process' | 'output'> | undefined,
): void {
  if (relay && relay.process.exitCode !== null)
    console.log(
      `${name}: the relay exited with ${relay.process.exitCode}:\n${relay.output().slice(-4000)}`,
    );
}
