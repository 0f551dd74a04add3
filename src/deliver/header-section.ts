/**
 * A Transform that lets one function edit a message's header section on its
 * way to the upstream: the header section is buffered (at most
 * MAX_HEADER_BYTES), handed to `edit`, and the body streams through
 * untouched. A header section too long to be one is passed on unedited.
 */
import { Transform, type TransformCallback } from 'node:stream';

const MAX_HEADER_BYTES = 256 * 1024;
const BLANK_LINE = Buffer.from('\r\n\r\n');

/** Gets the header lines (each ending in CRLF, latin1: one char per byte) and returns them edited */
export type HeaderEdit = (headers: string) => string;

export class HeaderSectionEditor extends Transform {
  private head: Buffer[] = [];
  private headLength = 0;
  private scanning = true;

  constructor(private readonly edit: HeaderEdit) {
    super();
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, done: TransformCallback): void {
    if (!this.scanning) return done(null, chunk);
    this.head.push(chunk);
    this.headLength += chunk.length;
    const buffered = Buffer.concat(this.head, this.headLength);
    this.head = [buffered];
    // Search from a little before the new chunk: the blank line may straddle two chunks
    const end = buffered.indexOf(BLANK_LINE, Math.max(0, this.headLength - chunk.length - 3));
    if (end >= 0) return done(null, this.release(buffered, end + 2));
    if (this.headLength > MAX_HEADER_BYTES) return done(null, this.passOn(buffered));
    done();
  }

  override _flush(done: TransformCallback): void {
    // A message that is all header: edit what there is
    if (this.scanning && this.headLength) {
      const buffered = Buffer.concat(this.head, this.headLength);
      const complete =
        buffered.subarray(-2).toString('latin1') === '\r\n'
          ? buffered
          : Buffer.concat([buffered, Buffer.from('\r\n')]);
      return done(null, this.release(complete, complete.length));
    }
    done();
  }

  /** `split` is just past the last header line's CRLF */
  private release(buffered: Buffer, split: number): Buffer {
    this.scanning = false;
    this.head = [];
    const edited = Buffer.from(this.edit(buffered.subarray(0, split).toString('latin1')), 'latin1');
    return Buffer.concat([edited, buffered.subarray(split)]);
  }

  private passOn(buffered: Buffer): Buffer {
    this.scanning = false;
    this.head = [];
    return buffered;
  }
}

export interface HeaderField {
  /** As written, e.g. "From" */
  name: string;
  /** Everything after the colon, folding and final CRLF included */
  raw: string;
}

/** Splits a header section into fields, keeping each one's exact bytes */
export function splitFields(headers: string): HeaderField[] {
  const fields: HeaderField[] = [];
  for (const line of headers.split(/(?<=\r\n)/)) {
    const last = fields.at(-1);
    if (/^[ \t]/.test(line) && last) last.raw += line;
    else {
      const colon = line.indexOf(':');
      fields.push(
        colon > 0
          ? { name: line.slice(0, colon), raw: line.slice(colon + 1) }
          : { name: '', raw: line },
      );
    }
  }
  return fields;
}

export const joinFields = (fields: readonly HeaderField[]): string =>
  fields.map((f) => (f.name ? `${f.name}:${f.raw}` : f.raw)).join('');

export const isField = (field: HeaderField, name: string): boolean =>
  field.name.toLowerCase() === name.toLowerCase();

/** A field's value unfolded and trimmed */
export const fieldValue = (field: HeaderField): string =>
  field.raw.replace(/\r\n(?=[ \t])/g, '').trim();
