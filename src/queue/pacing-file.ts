/**
 * Keeps the pacer's daily counts across restarts in `pacing.json`. Saved at
 * most once a minute and at stop, not per message: the card is spared, and a
 * crash forgets at most a minute of counts, which the providers' caps (a day)
 * absorb.
 */
import path from 'node:path';
import type { Logger } from '../log.js';
import { errorMessage } from '../errors.js';
import { readJsonFile, writeFileAtomic } from '../util/fsx.js';
import { Pacer, type PacingSnapshot } from './pacing.js';

const SAVE_EVERY_MS = 60_000;

export class PacingFile {
  private timer: NodeJS.Timeout | undefined;
  private dirty = false;

  private constructor(
    readonly pacer: Pacer,
    private readonly file: string,
    private readonly log: Logger,
  ) {}

  static async open(dataDir: string, log: Logger): Promise<PacingFile> {
    const file = path.join(dataDir, 'pacing.json');
    const pacer = new Pacer();
    try {
      const saved = await readJsonFile<PacingSnapshot>(file);
      if (saved && typeof saved === 'object') pacer.restore(saved, Date.now());
    } catch (err) {
      log.warn(
        { err: errorMessage(err), file },
        'The sending counts of the last day could not be read; counting starts again from zero',
      );
    }
    return new PacingFile(pacer, file, log);
  }

  /** Call after each change: the save follows within a minute */
  changed(): void {
    this.dirty = true;
    this.timer ??= setTimeout(() => void this.save(), SAVE_EVERY_MS).unref();
  }

  async close(): Promise<void> {
    clearTimeout(this.timer);
    await this.save();
  }

  private async save(): Promise<void> {
    this.timer = undefined;
    if (!this.dirty) return;
    this.dirty = false;
    try {
      await writeFileAtomic(this.file, JSON.stringify(this.pacer.snapshot(Date.now())));
    } catch (err) {
      this.dirty = true;
      this.log.warn(
        { err: errorMessage(err), file: this.file },
        'Could not save the sending counts; will try again',
      );
    }
  }
}
