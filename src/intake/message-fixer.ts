/**
 * Streams a received message and makes it fit to forward: our Received header
 * first, Date and Message-ID added at the end of the header section when the
 * device left them out, bare CR and NUL in the header section made spaces, and
 * the size limit enforced. Body bytes pass through untouched (8-bit included);
 * only the header section is ever buffered, and at most MAX_HEADER_SCAN bytes of it.
 */
import { Transform, type TransformCallback } from 'node:stream';
import type { SizeRule } from './size-limits.js';

const MAX_HEADER_SCAN = 256 * 1024;
const HEADER_END = Buffer.from('\r\n\r\n');
const FIELD_LINE = /^[!-9;-~]+:/;
/** A CR that does not end a line, and NUL: data in a header, never a line break (see headerSafe) */
const BARE_CR_OR_NUL = /\r(?!\n)|\0/g;

/**
 * A header section (latin1, lines ending in CRLF) with every bare CR and NUL
 * made a space. Some upstreams (and nodemailer on the way out) take a bare CR
 * for a line break, so `X-Inj: a<CR>Bcc: x@evil` would arrive as a new Bcc
 * field; as a space it stays part of the value it was sent in.
 */
export const headerSafe = (headers: string): string => headers.replace(BARE_CR_OR_NUL, ' ');

export interface MessageFixerOptions {
  /** Complete header lines to put first, each ending in CRLF */
  prepend: string;
  /** Called once the header section is known, with the headers the device left out to be filled in */
  missing: (has: { date: boolean; messageId: boolean }) => string;
  /** Message bytes allowed (not counting what we add), and the refusal of a message over them */
  limit: SizeRule;
}

export class MessageFixer extends Transform {
  private head: Buffer[] = [];
  private headLength = 0;
  /** The last bytes held, where a CRLFCRLF split across chunks may have begun */
  private carry = Buffer.alloc(0);
  private scanning = true;
  private received = 0;

  constructor(private readonly options: MessageFixerOptions) {
    super();
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, done: TransformCallback): void {
    this.received += chunk.length;
    if (this.received > this.options.limit.bytes) {
      // Keep reading to the end of DATA so the reply comes at the right moment, but store nothing more
      this.head = [];
      this.scanning = false;
      return done();
    }
    if (!this.scanning) return done(null, chunk);
    const end = this.findHeaderEnd(chunk);
    this.head.push(chunk);
    this.headLength += chunk.length;
    if (end >= 0) {
      const buffered = Buffer.concat(this.head, this.headLength);
      this.emitHead(buffered.subarray(0, end), buffered.subarray(end));
    } else if (this.headLength > MAX_HEADER_SCAN) {
      // A header section this long is not one we can safely edit; pass it on as it is
      this.push(this.options.prepend);
      for (const part of this.head) this.push(part);
      this.head = [];
      this.scanning = false;
    }
    done();
  }

  /**
   * Where the header section ends, counting `chunk` as appended to what we
   * hold: just past the last header line's CRLF, or -1. Only the new bytes and
   * the 3 before them are searched, so a long header section costs linear time.
   */
  private findHeaderEnd(chunk: Buffer): number {
    const window = Buffer.concat([this.carry, chunk]);
    const windowStart = this.headLength - this.carry.length;
    this.carry = window.subarray(Math.max(0, window.length - 3));
    if (windowStart === 0 && window[0] === 0x0d && window[1] === 0x0a) return 0;
    const index = window.indexOf(HEADER_END);
    return index < 0 ? -1 : windowStart + index + 2;
  }

  override _flush(done: TransformCallback): void {
    if (this.received > this.options.limit.bytes) {
      return done(this.options.limit.refusal(this.received));
    }
    if (this.scanning) {
      const buffered = Buffer.concat(this.head, this.headLength);
      const headers =
        buffered.length && !buffered.subarray(-2).equals(Buffer.from('\r\n'))
          ? Buffer.concat([buffered, Buffer.from('\r\n')])
          : buffered;
      this.emitHead(headers, Buffer.alloc(0));
    }
    done();
  }

  /** `headers` ends with the last header line's CRLF; `rest` starts with the blank line */
  private emitHead(headers: Buffer, rest: Buffer): void {
    this.scanning = false;
    this.head = [];
    const text = headers.toString('latin1');
    if (text.length > 0 && !FIELD_LINE.test(text)) {
      // No header section at all: the device sent a bare body
      this.push(
        this.options.prepend + this.options.missing({ date: false, messageId: false }) + '\r\n',
      );
      this.push(headers);
      this.push(rest);
      return;
    }
    const safe = headerSafe(text);
    this.push(this.options.prepend);
    this.push(Buffer.from(safe, 'latin1'));
    this.push(
      this.options.missing({ date: /^date:/im.test(safe), messageId: /^message-id:/im.test(safe) }),
    );
    this.push(rest.length ? rest : '\r\n');
  }
}
