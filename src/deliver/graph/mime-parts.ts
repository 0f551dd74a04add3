/**
 * What the large-message path needs from a MIME message, each in one
 * streaming pass over it (src/deliver/mime-walk.ts follows the structure):
 * its size and its large base64 parts; the message without those parts (the
 * draft); and one part's decoded bytes (the upload). Parts are numbered alike
 * in every pass, so the survey's numbers name the same parts later.
 */
import { Readable } from 'node:stream';
import { LineSplitter, type LinePiece } from '../line-pieces.js';
import { MimeWalker, type Section } from '../mime-walk.js';

export type OpenMessage = () => Promise<Readable>;

/** A part that travels by upload session instead of inside the draft */
export interface LargePart {
  index: number;
  name: string;
  contentType: string;
  /** Decoded size in bytes */
  size: number;
  contentId?: string;
  inline: boolean;
}

export interface Survey {
  /** The message's size in bytes, as sent */
  size: number;
  large: LargePart[];
}

const CRLF = Buffer.from('\r\n');
/** Header fields of a part worth keeping for its attachment's name and type (bounded) */
const KEPT_FIELDS = new Set(['content-type', 'content-disposition', 'content-id']);
const MAX_KEPT = 4096;

type Handler = (piece: LinePiece, section: Section) => void;

/** The message's lines, walked; resolves with its size in bytes */
async function walk(open: OpenMessage, handler: Handler): Promise<number> {
  const walker = new MimeWalker(handler);
  const splitter = new LineSplitter((piece) => walker.piece(piece));
  let size = 0;
  for await (const chunk of await open()) {
    size += (chunk as Buffer).length;
    splitter.push(chunk as Buffer);
  }
  splitter.end();
  return size;
}

const lineEnd = (piece: LinePiece): Buffer => (piece.last && piece.ended ? CRLF : Buffer.alloc(0));

/** A parameter of a structured field: name="x", name=x or (RFC 2231) name*=utf-8''x */
function parameter(value: string, name: string): string | undefined {
  const extended = new RegExp(`;\\s*${name}\\*\\s*=\\s*([^']*)'[^']*'([^;\\s]+)`, 'i').exec(value);
  if (extended?.[2]) {
    try {
      return decodeURIComponent(extended[2]);
    } catch {
      return extended[2];
    }
  }
  const plain = new RegExp(`;\\s*${name}\\s*=\\s*(?:"([^"]*)"|([^;\\s]+))`, 'i').exec(value);
  return plain?.[1] ?? plain?.[2];
}

function describePart(index: number, fields: Map<string, string>, size: number): LargePart {
  const type = fields.get('content-type') ?? '';
  const disposition = fields.get('content-disposition') ?? '';
  const contentId = /<([^>]+)>/.exec(fields.get('content-id') ?? '')?.[1];
  return {
    index,
    name: parameter(disposition, 'filename') ?? parameter(type, 'name') ?? `attachment-${index}`,
    contentType: type.split(';')[0]?.trim().toLowerCase() || 'application/octet-stream',
    size,
    ...(contentId ? { contentId } : {}),
    inline: /^\s*inline\b/i.test(disposition),
  };
}

/** Decoded size of base64 text: 3 bytes per 4 characters, less the padding */
const decodedSize = (chars: number, padding: number): number =>
  Math.floor((chars * 3) / 4) - padding;

/** The message's size and its base64 leaf parts (not the message itself) of at least `minimum` decoded bytes */
export async function surveyParts(open: OpenMessage, minimum: number): Promise<Survey> {
  const fields = new Map<number, Map<string, string>>();
  const base64 = new Map<number, { chars: number; padding: number }>();
  const size = await walk(open, (piece, section) => {
    if (section.kind === 'header' && KEPT_FIELDS.has(section.field) && section.part.index > 0) {
      const kept = fields.get(section.part.index) ?? new Map<string, string>();
      const line = piece.bytes.toString('latin1');
      const startsField = piece.first && !/^[ \t]/.test(line);
      kept.set(
        section.field,
        (
          (startsField ? '' : (kept.get(section.field) ?? '')) +
          (startsField ? line.slice(line.indexOf(':') + 1) : line)
        ).slice(0, MAX_KEPT),
      );
      fields.set(section.part.index, kept);
    }
    if (section.kind !== 'body' || section.part.encoding !== 'base64' || section.part.index === 0)
      return;
    const count = base64.get(section.part.index) ?? { chars: 0, padding: 0 };
    const text = piece.bytes.toString('latin1').replace(/[^A-Za-z0-9+/=]/g, '');
    count.chars += text.length;
    const pad = /=+$/.exec(text)?.[0].length ?? 0;
    if (text.length > 0) count.padding = pad;
    base64.set(section.part.index, count);
  });
  const large = [...base64.entries()]
    .map(([index, count]) =>
      describePart(index, fields.get(index) ?? new Map(), decodedSize(count.chars, count.padding)),
    )
    .filter((part) => part.size >= minimum);
  return { size, large };
}

const partOf = (section: Section): number | undefined =>
  section.kind === 'structure' ? undefined : section.part.index;

/**
 * The message without the parts in `dropped`: their header, body and the
 * delimiter line before each. A delimiter line is held until the next line
 * says which part it opens.
 */
export function withoutParts(open: OpenMessage, dropped: ReadonlySet<number>): Readable {
  async function* lines(): AsyncGenerator<Buffer> {
    const out: Buffer[] = [];
    let held: Buffer | undefined;
    const handler: Handler = (piece, section) => {
      const part = partOf(section);
      const bytes = Buffer.concat([piece.bytes, lineEnd(piece)]);
      if (part !== undefined && dropped.has(part)) {
        held = undefined;
        return;
      }
      if (held) out.push(held);
      held = undefined;
      if (section.kind === 'structure' && piece.first && piece.last && piece.bytes[0] === 0x2d)
        held = bytes;
      else out.push(bytes);
    };
    const walker = new MimeWalker(handler);
    const splitter = new LineSplitter((piece) => walker.piece(piece));
    for await (const chunk of await open()) {
      splitter.push(chunk as Buffer);
      if (out.length) yield Buffer.concat(out.splice(0));
    }
    splitter.end();
    if (held) out.push(held);
    if (out.length) yield Buffer.concat(out.splice(0));
  }
  return Readable.from(lines(), { objectMode: false });
}

/** The decoded bytes of one base64 part, as they stream past */
export async function* decodedPart(open: OpenMessage, index: number): AsyncGenerator<Buffer> {
  const out: Buffer[] = [];
  let carry = '';
  const walker = new MimeWalker((piece, section) => {
    if (section.kind !== 'body' || section.part.index !== index) return;
    const text = carry + piece.bytes.toString('latin1').replace(/[^A-Za-z0-9+/=]/g, '');
    const whole = text.length - (text.length % 4);
    carry = text.slice(whole);
    if (whole > 0) out.push(Buffer.from(text.slice(0, whole), 'base64'));
  });
  const splitter = new LineSplitter((piece) => walker.piece(piece));
  for await (const chunk of await open()) {
    splitter.push(chunk as Buffer);
    if (out.length) yield Buffer.concat(out.splice(0));
  }
  splitter.end();
  if (carry) out.push(Buffer.from(carry, 'base64'));
  if (out.length) yield Buffer.concat(out.splice(0));
}

/** `source` as base64 text, streamed (3 bytes in, 4 characters out) */
export function base64Of(source: Readable): Readable {
  async function* encode(): AsyncGenerator<Buffer> {
    let carry = Buffer.alloc(0);
    for await (const chunk of source) {
      const bytes = Buffer.concat([carry, chunk as Buffer]);
      const whole = bytes.length - (bytes.length % 3);
      carry = bytes.subarray(whole);
      if (whole > 0) yield Buffer.from(bytes.subarray(0, whole).toString('base64'), 'latin1');
    }
    if (carry.length) yield Buffer.from(carry.toString('base64'), 'latin1');
  }
  return Readable.from(encode(), { objectMode: false });
}

export const base64Length = (bytes: number): number => Math.ceil(bytes / 3) * 4;

/** How many bytes a stream holds (one pass) */
export async function measure(open: OpenMessage): Promise<number> {
  let size = 0;
  for await (const chunk of await open()) size += (chunk as Buffer).length;
  return size;
}
