/**
 * The one-time setup token: while no admin password exists, only someone
 * who can read the log or <dataDir>/setup-token (mode 0600) may set it.
 */
import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { writeFileAtomic } from '../util/fsx.js';
import { sameSecret } from '../util/password.js';

export class SetupToken {
  private token: string | undefined;

  constructor(private readonly dataDir: string) {}

  get file(): string {
    return path.join(this.dataDir, 'setup-token');
  }

  /** Makes a fresh token and writes it to the data dir; returns it for the log */
  async issue(): Promise<string> {
    this.token = randomBytes(12).toString('hex');
    await writeFileAtomic(this.file, `${this.token}\n`, 0o600);
    return this.token;
  }

  matches(candidate: string): boolean {
    return this.token !== undefined && sameSecret(this.token, candidate.trim());
  }

  /** Used up: the password is set */
  async retire(): Promise<void> {
    this.token = undefined;
    await fs.rm(this.file, { force: true });
  }
}
