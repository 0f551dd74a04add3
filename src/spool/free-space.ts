/**
 * Free bytes on the spool's file system, asked at every MAIL FROM. With
 * plenty of room the file system is asked at most once a second, and what
 * the spool took in since is subtracted from its answer; near full it is
 * asked every time, so space freed a moment ago counts at once.
 */
import { promises as fs } from 'node:fs';

const MAX_AGE_MS = 1_000;
const TRUST_ESTIMATE_ABOVE_BYTES = 256 * 1024 * 1024;

export class FreeSpace {
  private last: { at: number; bytes: Promise<number>; takenSince: number } | undefined;

  constructor(private readonly dir: string) {}

  /** A message of `size` bytes was stored */
  took(size: number): void {
    if (this.last) this.last.takenSince += size;
  }

  async bytes(): Promise<number> {
    if (this.last && Date.now() - this.last.at <= MAX_AGE_MS) {
      const { bytes, takenSince } = this.last;
      const estimate = (await bytes) - takenSince;
      if (estimate > TRUST_ESTIMATE_ABOVE_BYTES) return estimate;
    }
    const asked = {
      at: Date.now(),
      bytes: fs.statfs(this.dir).then((stats) => stats.bavail * stats.bsize),
      takenSince: 0,
    };
    asked.bytes.catch(() => (this.last = undefined));
    this.last = asked;
    return asked.bytes;
  }
}
