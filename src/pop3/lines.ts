/**
 * Command lines from a client, one at a time, with bounded memory: a line
 * longer than the limit is dropped and reported once, whatever it contains.
 * On STLS the reader moves to the TLS socket and forgets everything the
 * client sent in clear text after the command (RFC 2595 §3.1 / RFC 3207 §4.2
 * style: no plaintext injection into the encrypted session).
 */
import type { Readable } from 'node:stream';

export type Line = { kind: 'line'; text: string } | { kind: 'too-long' };

const LF = 0x0a;
const CR = 0x0d;
/** Stop reading from the socket while this many lines wait unanswered */
const MAX_QUEUED = 64;

export class LineReader {
  private source: Readable | undefined;
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private discarding = false;
  private readonly queue: Line[] = [];
  private ended = false;
  private wake: (() => void) | undefined;

  constructor(private readonly maxLength: number) {}

  private readonly onData = (chunk: Buffer) => this.accept(chunk);
  private readonly onEnd = () => {
    this.ended = true;
    this.notify();
  };

  attach(source: Readable): void {
    this.source = source;
    this.ended = false;
    source.on('data', this.onData);
    source.on('end', this.onEnd);
    source.on('close', this.onEnd);
  }

  /** Stops reading from the current source and drops whatever it sent that was not read yet */
  detach(): void {
    const source = this.source;
    if (!source) return;
    source.off('data', this.onData);
    source.off('end', this.onEnd);
    source.off('close', this.onEnd);
    this.source = undefined;
    this.pending = [];
    this.pendingBytes = 0;
    this.discarding = false;
    this.queue.length = 0;
  }

  /** Makes next() return null from now on (idle timeout, shutdown) */
  stop(): void {
    this.detach();
    this.ended = true;
    this.notify();
  }

  /** The next line, or null once the client is gone */
  async next(): Promise<Line | null> {
    while (this.queue.length === 0 && !this.ended)
      await new Promise<void>((resolve) => (this.wake = resolve));
    const line = this.queue.shift() ?? null;
    if (this.queue.length < MAX_QUEUED && this.source?.isPaused()) this.source.resume();
    return line;
  }

  private accept(chunk: Buffer): void {
    let start = 0;
    for (let lf = chunk.indexOf(LF); lf !== -1; lf = chunk.indexOf(LF, start)) {
      this.take(chunk.subarray(start, lf));
      this.endLine();
      start = lf + 1;
    }
    this.take(chunk.subarray(start));
    if (this.queue.length >= MAX_QUEUED) this.source?.pause();
    this.notify();
  }

  private take(part: Buffer): void {
    if (this.discarding || part.length === 0) return;
    // +1: the CR of the line's CRLF is not part of the line
    if (this.pendingBytes + part.length > this.maxLength + 1) {
      this.discarding = true;
      this.pending = [];
      this.pendingBytes = 0;
      return;
    }
    this.pending.push(Buffer.from(part));
    this.pendingBytes += part.length;
  }

  private endLine(): void {
    if (this.discarding) {
      this.queue.push({ kind: 'too-long' });
      this.discarding = false;
      return;
    }
    const bytes = Buffer.concat(this.pending);
    const length = bytes.at(-1) === CR ? bytes.length - 1 : bytes.length;
    this.pending = [];
    this.pendingBytes = 0;
    this.queue.push(
      length > this.maxLength
        ? { kind: 'too-long' }
        : { kind: 'line', text: bytes.subarray(0, length).toString('utf8') },
    );
  }

  private notify(): void {
    const wake = this.wake;
    this.wake = undefined;
    wake?.();
  }
}
