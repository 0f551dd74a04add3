/**
 * Where a message's bytes go while it is received: memory up to a small
 * bound (the message then goes into the journal as one record), a file of
 * its own beyond it. Nothing ever holds a whole large message, so memory
 * stays flat in message size.
 */
import { promises as fs } from 'node:fs';
import { Writable } from 'node:stream';

export type ReceivedBody = { kind: 'inline'; bytes: Buffer } | { kind: 'file'; size: number };

/**
 * The chunks joined in a buffer of their own. Buffer.concat takes a small
 * result from Node's shared 8 KiB pool, and a kept body (recent-bodies.ts)
 * would then hold its whole slab, up to four times its size.
 */
function ownBuffer(chunks: Buffer[]): Buffer {
  // Sized from the chunks themselves: a byte not copied over would be another allocation's leftovers
  const bytes = Buffer.allocUnsafeSlow(chunks.reduce((total, chunk) => total + chunk.length, 0));
  let at = 0;
  for (const chunk of chunks) at += chunk.copy(bytes, at);
  return bytes;
}

export class BodySink extends Writable {
  private chunks: Buffer[] = [];
  private size = 0;
  private handle: fs.FileHandle | undefined;
  private opening: Promise<fs.FileHandle> | undefined;

  /** `file` is created (exclusively) only once `inlineMax` bytes are passed */
  constructor(
    private readonly inlineMax: number,
    private readonly file: string,
  ) {
    super();
  }

  get received(): ReceivedBody {
    return this.handle
      ? { kind: 'file', size: this.size }
      : { kind: 'inline', bytes: ownBuffer(this.chunks) };
  }

  /** After a failed reception: the file, if one was started (or is being opened right now), goes */
  async discard(): Promise<void> {
    if (!this.opening) return;
    const handle = await this.opening.catch(() => undefined);
    await handle?.close().catch(() => undefined);
    await fs.rm(this.file, { force: true });
  }

  override _write(
    chunk: Buffer,
    _encoding: BufferEncoding,
    done: (err?: Error | null) => void,
  ): void {
    this.size += chunk.length;
    if (!this.handle && this.size <= this.inlineMax) {
      this.chunks.push(chunk);
      done();
      return;
    }
    this.spill(chunk).then(() => done(), done);
  }

  override _final(done: (err?: Error | null) => void): void {
    const handle = this.handle;
    if (!handle) return done();
    handle.sync().then(
      () => handle.close().then(() => done(), done),
      (err: Error) => handle.close().finally(() => done(err)),
    );
  }

  override _destroy(err: Error | null, done: (err?: Error | null) => void): void {
    // Also called after a normal finish (autoDestroy): the bytes stay for `received`
    if (err) this.chunks = [];
    // Closing an already-closed handle is harmless; its error is not the one to report
    void this.handle?.close().catch(() => undefined);
    done(err);
  }

  private async spill(chunk: Buffer): Promise<void> {
    if (!this.handle) {
      this.opening = fs.open(this.file, 'wx', 0o600);
      this.handle = await this.opening;
      const held = Buffer.concat(this.chunks);
      this.chunks = [];
      await this.handle.write(held);
    }
    await this.handle.write(chunk);
  }
}
