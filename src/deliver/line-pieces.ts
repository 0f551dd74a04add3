/**
 * Splits a message stream into lines without ever holding a long one: a line
 * up to MAX_PIECE bytes comes whole, a longer one in pieces. The line end
 * (CRLF, or a bare LF) is not part of the bytes; a CR before it is part of the
 * line end, any other CR is data.
 */

const LF = 0x0a;
const CR = 0x0d;
/** Lines up to this long come in one piece; longer ones never raise memory by more */
export const MAX_PIECE = 64 * 1024;

export interface LinePiece {
  bytes: Buffer;
  /** The line's first piece */
  first: boolean;
  /** The line's last piece */
  last: boolean;
  /** The line ended with a line break (only the message's last line may not) */
  ended: boolean;
}

export class LineSplitter {
  private held: Buffer[] = [];
  private heldLength = 0;
  /** Some of the current line was handed on already */
  private started = false;

  constructor(private readonly emit: (piece: LinePiece) => void) {}

  push(chunk: Buffer): void {
    let start = 0;
    for (let lf = chunk.indexOf(LF); lf >= 0; lf = chunk.indexOf(LF, start)) {
      const line = this.take(chunk.subarray(start, lf));
      const end = line.length > 0 && line[line.length - 1] === CR ? line.length - 1 : line.length;
      this.emitPiece(line.subarray(0, end), true, true);
      start = lf + 1;
    }
    if (start < chunk.length) {
      this.held.push(chunk.subarray(start));
      this.heldLength += chunk.length - start;
    }
    if (this.heldLength > MAX_PIECE) {
      // Keep the last byte back: it may be the CR of a CRLF, and the line's last piece is then never empty
      const line = this.take(Buffer.alloc(0));
      this.emitPiece(line.subarray(0, line.length - 1), false, false);
      this.held = [line.subarray(line.length - 1)];
      this.heldLength = 1;
    }
  }

  /** The message's last line, when it has no line break */
  end(): void {
    if (this.heldLength > 0 || this.started)
      this.emitPiece(this.take(Buffer.alloc(0)), true, false);
  }

  /** What is held plus `tail`, as one buffer; nothing is held afterwards */
  private take(tail: Buffer): Buffer {
    if (this.heldLength === 0) return tail;
    const line = Buffer.concat([...this.held, tail], this.heldLength + tail.length);
    this.held = [];
    this.heldLength = 0;
    return line;
  }

  private emitPiece(bytes: Buffer, last: boolean, ended: boolean): void {
    this.emit({ bytes, first: !this.started, last, ended });
    this.started = !last;
  }
}
