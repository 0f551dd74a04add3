/** The admin password for the web page, stored as a scrypt hash in <dataDir>/admin.json (mode 0600) */
import path from 'node:path';
import { UsageError } from '../errors.js';
import { readJsonFile, writeFileAtomic } from '../util/fsx.js';
import { hashPassword, passwordProblem, verifyPassword } from '../util/password.js';

interface AdminRecord {
  hash: string;
  changedAt: string;
}

export class AdminCredentials {
  private readonly file: string;

  constructor(dataDir: string) {
    this.file = path.resolve(dataDir, 'admin.json');
  }

  async isSet(): Promise<boolean> {
    return !!(await readJsonFile<AdminRecord>(this.file))?.hash;
  }

  async set(password: string): Promise<void> {
    const problem = passwordProblem(password);
    if (problem) throw new UsageError(problem);
    await writeFileAtomic(
      this.file,
      JSON.stringify({ hash: await hashPassword(password), changedAt: new Date().toISOString() }),
      0o600,
    );
  }

  async verify(password: string): Promise<boolean> {
    const record = await readJsonFile<AdminRecord>(this.file);
    return !!record?.hash && (await verifyPassword(password, record.hash));
  }
}
