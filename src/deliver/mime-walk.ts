/**
 * Follows a message's MIME structure line by line, as it streams: which part
 * each line belongs to, whether it is a header line, a body line, a boundary
 * or the text around the parts of a multipart (preamble, epilogue), and each
 * part's transfer encoding. Parts are numbered in the order their header
 * sections begin (the message itself is 0), so two passes over the same
 * message number them alike. Nothing but the current field is held, and of
 * that at most MAX_FIELD bytes.
 */
import type { LinePiece } from './line-pieces.js';

const MAX_FIELD = 8 * 1024;
/** Multiparts nested deeper than this are followed no further (their content counts as one part): memory stays bounded */
const MAX_DEPTH = 32;
/** A boundary line is at most 70 characters of boundary, the dashes and some trailing space */
const MAX_BOUNDARY_LINE = 200;

export type Encoding = 'identity' | 'base64' | 'quoted-printable';

export interface Part {
  index: number;
  encoding: Encoding;
  /** Its header section has a MIME-Version field (only the message's own is meant to) */
  hasMimeVersion: boolean;
}

export type Section =
  /** A header line of `part` (first piece: `field` is its field's name, lower case, "" for a line that is no field) */
  | { kind: 'header'; part: Part; field: string }
  /** The blank line that ends `part`'s header section (the bytes are empty) */
  | { kind: 'header-end'; part: Part }
  | { kind: 'body'; part: Part }
  /** A boundary line, or the preamble or epilogue of a multipart: text nobody decodes */
  | { kind: 'structure' };

export type WalkHandler = (piece: LinePiece, section: Section) => void;

interface Fields {
  contentType: string;
  encoding: string;
  mimeVersion: boolean;
}

const IDENTITY = new Set(['', '7bit', '8bit', 'binary']);

/** Unknown encodings (x-uuencode and the like) count as the bytes they are */
function encodingOf(value: string): Encoding {
  const name = value.trim().toLowerCase();
  return name === 'base64' || name === 'quoted-printable' ? name : 'identity';
}

function boundaryOf(contentType: string): string | undefined {
  if (!/^\s*multipart\//i.test(contentType)) return undefined;
  const match = /;\s*boundary\s*=\s*(?:"([^"]+)"|([^\s;"]+))/i.exec(contentType);
  return match?.[1] ?? match?.[2];
}

/** message/rfc822 whose body is a message in its own right (not encoded) */
const isMessage = (fields: Fields): boolean =>
  /^\s*message\/(rfc822|global)\b/i.test(fields.contentType) &&
  IDENTITY.has(fields.encoding.trim().toLowerCase());

export class MimeWalker {
  /** Boundaries of the multiparts we are inside, outermost first */
  private readonly boundaries: string[] = [];
  private nextIndex = 0;
  private part: Part;
  private inHeader = true;
  private fields: Fields = { contentType: '', encoding: '', mimeVersion: false };
  /** The field being read: its name and (the start of) its value, unfolded */
  private field = { name: '', value: '' };
  /** What the current line is, and what a body line is in the current part */
  private lineSection: Section = { kind: 'structure' };
  private bodySection: Section = { kind: 'structure' };

  constructor(private readonly handler: WalkHandler) {
    this.part = this.newPart();
  }

  piece(piece: LinePiece): void {
    if (piece.first) this.lineSection = this.classify(piece);
    if (this.lineSection.kind === 'header') this.collect(piece.bytes, piece.first);
    this.handler(piece, this.lineSection);
  }

  private newPart(): Part {
    this.inHeader = true;
    this.fields = { contentType: '', encoding: '', mimeVersion: false };
    this.field = { name: '', value: '' };
    return { index: this.nextIndex++, encoding: 'identity', hasMimeVersion: false };
  }

  /** What the line that starts with `piece` is (its later pieces belong to the same) */
  private classify(piece: LinePiece): Section {
    const delimiter = piece.last ? this.delimiter(piece.bytes) : undefined;
    if (delimiter) {
      this.endField();
      this.boundaries.length = delimiter.depth + (delimiter.close ? 0 : 1);
      if (delimiter.close) this.inBody({ kind: 'structure' });
      else this.part = this.newPart();
      return { kind: 'structure' };
    }
    if (!this.inHeader) return this.bodySection;
    if (piece.last && piece.bytes.length === 0) return this.endHeader();
    const continued = piece.bytes[0] === 0x20 || piece.bytes[0] === 0x09;
    if (!continued) this.endField();
    return {
      kind: 'header',
      part: this.part,
      field: continued ? this.field.name : this.fieldName(piece.bytes),
    };
  }

  private inBody(section: Section): void {
    this.inHeader = false;
    this.bodySection = section;
  }

  private endHeader(): Section {
    this.endField();
    const part = this.part;
    part.encoding = encodingOf(this.fields.encoding);
    part.hasMimeVersion = this.fields.mimeVersion;
    const boundary = boundaryOf(this.fields.contentType);
    const section: Section = { kind: 'header-end', part };
    if (boundary && this.boundaries.length < MAX_DEPTH) {
      this.boundaries.push(boundary);
      this.inBody({ kind: 'structure' });
    } else if (isMessage(this.fields)) {
      // The body is a message: its own header section starts on the next line
      this.part = this.newPart();
    } else this.inBody({ kind: 'body', part });
    return section;
  }

  private fieldName(bytes: Buffer): string {
    const line = bytes.subarray(0, 80).toString('latin1');
    const colon = line.indexOf(':');
    this.field = { name: colon > 0 ? line.slice(0, colon).trim().toLowerCase() : '', value: '' };
    return this.field.name;
  }

  private collect(bytes: Buffer, first: boolean): void {
    const room = MAX_FIELD - this.field.value.length;
    if (!this.field.name || room <= 0) return;
    const start = first ? bytes.indexOf(0x3a) + 1 : 0;
    this.field.value += bytes.subarray(start, start + room).toString('latin1');
  }

  private endField(): void {
    const { name, value } = this.field;
    if (name === 'content-type') this.fields.contentType = value;
    else if (name === 'content-transfer-encoding') this.fields.encoding = value;
    else if (name === 'mime-version') this.fields.mimeVersion = true;
    this.field = { name: '', value: '' };
  }

  /** The multipart (depth in `boundaries`) whose delimiter this line is, innermost first */
  private delimiter(bytes: Buffer): { depth: number; close: boolean } | undefined {
    if (bytes.length > MAX_BOUNDARY_LINE || bytes[0] !== 0x2d || bytes[1] !== 0x2d)
      return undefined;
    const line = bytes.toString('latin1').replace(/[ \t]+$/, '');
    for (let depth = this.boundaries.length - 1; depth >= 0; depth--) {
      const open = `--${this.boundaries[depth]}`;
      if (line === open) return { depth, close: false };
      if (line === `${open}--`) return { depth, close: true };
    }
    return undefined;
  }
}
