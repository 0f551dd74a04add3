/**
 * Makes a message safe for a strict upstream: no line over 998 octets
 * (RFC 5321 4.5.3.1.6), no NUL, no CR that is not part of a line break (one
 * upstream takes it for a line break, another bounces it). Content survives:
 *
 * - A body part sent as is (7bit, 8bit, binary) with such a line is re-encoded
 *   quoted-printable, so it decodes back to the same bytes; the message gets
 *   MIME-Version when it had none.
 * - A base64 line is split (line breaks mean nothing in base64) and what is not
 *   base64 is dropped; a quoted-printable line gets soft line breaks, and NUL
 *   and CR are escaped.
 * - A header line is folded at white space, or where there is none, broken
 *   with a folding space (which then becomes part of the value); NUL and a bare
 *   CR are spaces.
 * - Preamble and epilogue text (which nobody reads) is wrapped, NUL and CR spaces.
 *
 * Two passes over the spool file, never holding more than a line piece: the
 * first finds what needs doing (a quick check, then which parts), the second
 * does it. A message with nothing to fix is passed on byte for byte, so the
 * DKIM signatures of valid mail survive.
 */
import { Transform, type Readable, type TransformCallback } from 'node:stream';
import { LineSplitter, type LinePiece } from './line-pieces.js';
import { MimeWalker, type Part, type Section } from './mime-walk.js';

/** Octets in a line, not counting its CRLF */
export const MAX_LINE = 998;
/** Quoted-printable and base64 lines are at most 76 characters (RFC 2045) */
const ENCODED_WIDTH = 76;
const LF = 0x0a;
const CR = 0x0d;
const NUL = 0x00;
const CRLF = Buffer.from('\r\n');

/** Which unencoded parts (by MimeWalker index) to re-encode */
export type Reencode = (index: number) => boolean;
/** undefined when the message needs nothing at all */
export type LineFixPlan = Reencode | undefined;

/** A set of part numbers as bits: a message made of millions of tiny parts still plans in a few hundred KB */
class PartSet {
  private bits = new Uint8Array(64);

  add(index: number): void {
    if (index >> 3 >= this.bits.length) {
      const grown = new Uint8Array(Math.max(this.bits.length * 2, (index >> 3) + 1));
      grown.set(this.bits);
      this.bits = grown;
    }
    this.bits[index >> 3]! |= 1 << (index & 7);
  }

  has(index: number): boolean {
    return ((this.bits[index >> 3] ?? 0) & (1 << (index & 7))) !== 0;
  }
}

const isClean = (bytes: Buffer): boolean =>
  bytes.length <= MAX_LINE && bytes.indexOf(NUL) < 0 && bytes.indexOf(CR) < 0;

/** The quick first look: any line too long, any NUL, any CR not before LF (bare LF is made CRLF on the way out) */
export async function needsLineFixes(source: Readable): Promise<boolean> {
  let lineLength = 0;
  let afterCr = false;
  try {
    for await (const chunk of source as AsyncIterable<Buffer>) {
      if (chunk.indexOf(NUL) >= 0 || (afterCr && chunk[0] !== LF)) return true;
      for (
        let cr = chunk.indexOf(CR);
        cr >= 0 && cr < chunk.length - 1;
        cr = chunk.indexOf(CR, cr + 1)
      )
        if (chunk[cr + 1] !== LF) return true;
      afterCr = chunk[chunk.length - 1] === CR;
      let start = 0;
      for (let lf = chunk.indexOf(LF); lf >= 0; lf = chunk.indexOf(LF, start)) {
        // The line's length with its CR (a bare LF line has none: one octet of slack is within the limit anyway)
        if (lineLength + lf - start > MAX_LINE + 1) return true;
        lineLength = 0;
        start = lf + 1;
      }
      lineLength += chunk.length - start;
      if (lineLength > MAX_LINE + 1) return true;
    }
    return false;
  } finally {
    source.destroy();
  }
}

/** The second look, only at messages that need it: which unencoded parts to re-encode */
export async function planLineFixes(source: Readable): Promise<Reencode> {
  const listed = new PartSet();
  let lineLength = 0;
  const walker = new MimeWalker((piece, section) => {
    lineLength = (piece.first ? 0 : lineLength) + piece.bytes.length;
    const trouble =
      lineLength > MAX_LINE || piece.bytes.indexOf(NUL) >= 0 || piece.bytes.indexOf(CR) >= 0;
    if (trouble && section.kind === 'body' && section.part.encoding === 'identity')
      listed.add(section.part.index);
  });
  const splitter = new LineSplitter((piece) => walker.piece(piece));
  try {
    for await (const chunk of source as AsyncIterable<Buffer>) splitter.push(chunk);
    splitter.end();
    return (index) => listed.has(index);
  } finally {
    source.destroy();
  }
}

/** The plan for the message `open` gives: two reads at most, one when there is nothing to do */
export async function lineFixPlan(open: () => Promise<Readable>): Promise<LineFixPlan> {
  return (await needsLineFixes(await open())) ? planLineFixes(await open()) : undefined;
}

/** Fixes one line, piece by piece: gets each piece and whether it is the line's last, returns what to send for it */
type LineFix = (bytes: Buffer, last: boolean) => Buffer;

const EQUALS = 0x3d;
const SPACE = 0x20;
const HEX_DIGITS = Buffer.from('0123456789ABCDEF');
const BASE64_ALPHABET = new Uint8Array(256);
for (const byte of Buffer.from('ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/='))
  BASE64_ALPHABET[byte] = 1;

/** One piece's output, written into a buffer sized for the worst case (no strings: a 50 MB line makes little garbage) */
class Output {
  private readonly buffer: Buffer;
  private length = 0;

  constructor(capacity: number) {
    this.buffer = Buffer.allocUnsafe(capacity);
  }

  byte(byte: number): void {
    this.buffer[this.length++] = byte;
  }

  /** =XX */
  escape(byte: number): void {
    this.byte(EQUALS);
    this.byte(HEX_DIGITS[byte >> 4]!);
    this.byte(HEX_DIGITS[byte & 15]!);
  }

  lineBreak(): void {
    this.byte(CR);
    this.byte(LF);
  }

  /** Quoted-printable's "=" at the end of a line: the line goes on */
  softBreak(): void {
    this.byte(EQUALS);
    this.lineBreak();
  }

  done(): Buffer {
    return this.buffer.subarray(0, this.length);
  }
}

/** Worst case of an encoding that may triple each byte and break every 76 */
const encodedCapacity = (bytes: Buffer): number => bytes.length * 4 + 8;

/** Quoted-printable of bytes sent as they are: white space at the line's end escaped, soft breaks keep lines to 76 */
function quotedPrintable(): LineFix {
  let column = 0;
  return (bytes, last) => {
    const out = new Output(encodedCapacity(bytes));
    for (let i = 0; i < bytes.length; i++) {
      const byte = bytes[i]!;
      const atEnd = last && i === bytes.length - 1;
      const literal =
        (byte > SPACE && byte < 0x7f && byte !== EQUALS) ||
        ((byte === SPACE || byte === 0x09) && !atEnd);
      const width = literal ? 1 : 3;
      if (column + width > ENCODED_WIDTH - 1) {
        out.softBreak();
        column = 0;
      }
      if (literal) out.byte(byte);
      else out.escape(byte);
      column += width;
    }
    return out.done();
  };
}

/** A quoted-printable line with soft breaks added (never inside an =XX) and NUL and CR escaped */
function softBreaks(): LineFix {
  let column = 0;
  let inEscape = 0;
  return (bytes) => {
    const out = new Output(encodedCapacity(bytes));
    for (const byte of bytes) {
      const escape = byte === NUL || byte === CR;
      // An "=" starts an escape: it and its two digits stay on one line
      if (inEscape === 0 && column + (escape || byte === EQUALS ? 3 : 1) > ENCODED_WIDTH - 1) {
        out.softBreak();
        column = 0;
      }
      inEscape = byte === EQUALS ? 2 : Math.max(0, inEscape - 1);
      if (escape) out.escape(byte);
      else out.byte(byte);
      column += escape ? 3 : 1;
    }
    return out.done();
  };
}

/** A base64 line split into lines of 76; anything that is not base64 dropped (decoders skip it too) */
function base64Lines(): LineFix {
  let column = 0;
  return (bytes) => {
    const out = new Output(encodedCapacity(bytes));
    for (const byte of bytes) {
      if (!BASE64_ALPHABET[byte]) continue;
      if (column === ENCODED_WIDTH) {
        out.lineBreak();
        column = 0;
      }
      out.byte(byte);
      column++;
    }
    return out.done();
  };
}

/** Text nobody decodes (preamble, epilogue): wrapped at the limit, NUL and CR made spaces */
function wrapped(): LineFix {
  let column = 0;
  return (bytes) => {
    const out = new Output(encodedCapacity(bytes));
    for (const byte of bytes) {
      if (column === MAX_LINE) {
        out.lineBreak();
        column = 0;
      }
      out.byte(byte === NUL || byte === CR ? SPACE : byte);
      column++;
    }
    return out.done();
  };
}

/** A header line folded at white space before the limit; where there is none, broken with a folding space */
function folded(): LineFix {
  let pending = '';
  /** Characters already on the current output line that are not in `pending` (an inserted folding space) */
  let lead = 0;
  return (bytes, last) => {
    pending += bytes.toString('latin1').replace(/[\0\r]/g, ' ');
    let out = '';
    let from = 0;
    while (lead + pending.length - from > MAX_LINE) {
      const limit = from + MAX_LINE - lead;
      const space = Math.max(pending.lastIndexOf(' ', limit), pending.lastIndexOf('\t', limit));
      if (space > from) {
        out += `${pending.slice(from, space)}\r\n`;
        from = space;
        lead = 0;
      } else {
        out += `${pending.slice(from, limit)}\r\n `;
        from = limit;
        lead = 1;
      }
    }
    pending = pending.slice(from);
    if (last) {
      out += pending;
      pending = '';
    }
    return Buffer.from(out, 'latin1');
  };
}

/** The second pass: the message with `plan` applied and every line fixed that needs it */
export class LineFixer extends Transform {
  private readonly walker = new MimeWalker((piece, section) => this.fix(piece, section));
  private readonly splitter = new LineSplitter((piece) => this.walker.piece(piece));
  private line: LineFix | 'pass' | 'drop' = 'pass';
  private out: Buffer[] = [];

  constructor(private readonly reencode: Reencode) {
    super();
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, done: TransformCallback): void {
    this.splitter.push(chunk);
    this.release(done);
  }

  override _flush(done: TransformCallback): void {
    this.splitter.end();
    this.release(done);
  }

  private release(done: TransformCallback): void {
    const out = Buffer.concat(this.out);
    this.out = [];
    done(null, out.length ? out : undefined);
  }

  private fix(piece: LinePiece, section: Section): void {
    if (piece.first) this.line = this.fixFor(piece, section);
    if (section.kind === 'header-end')
      this.out.push(Buffer.from(this.addedFields(section.part), 'latin1'));
    if (this.line === 'drop') return;
    this.out.push(this.line === 'pass' ? piece.bytes : this.line(piece.bytes, piece.last));
    if (piece.last && piece.ended) this.out.push(CRLF);
  }

  private fixFor(piece: LinePiece, section: Section): LineFix | 'pass' | 'drop' {
    const whole = piece.last && isClean(piece.bytes);
    switch (section.kind) {
      case 'header':
        if (this.reencode(section.part.index) && section.field === 'content-transfer-encoding')
          return 'drop';
        return whole ? 'pass' : folded();
      case 'header-end':
        return 'pass';
      case 'body':
        if (this.reencode(section.part.index)) return quotedPrintable();
        if (whole) return 'pass';
        return section.part.encoding === 'base64'
          ? base64Lines()
          : section.part.encoding === 'quoted-printable'
            ? softBreaks()
            : wrapped();
      case 'structure':
        return whole ? 'pass' : wrapped();
    }
  }

  private addedFields(part: Part): string {
    if (!this.reencode(part.index)) return '';
    const mimeVersion = part.index === 0 && !part.hasMimeVersion ? 'MIME-Version: 1.0\r\n' : '';
    return `${mimeVersion}Content-Transfer-Encoding: quoted-printable\r\n`;
  }
}
