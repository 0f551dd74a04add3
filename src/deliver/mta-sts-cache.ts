/**
 * The MTA-STS policy cache on disk (<dataDir>/mta-sts-policies.json), so a
 * restart does not forget a domain's policy (RFC 8461 section 5: an attacker
 * who blocks the policy host must not downgrade a sender that already knows
 * the policy). Written atomically after each fetch; expired entries are left
 * out; a damaged file is logged and ignored, never fatal.
 */
import path from 'node:path';
import { z } from 'zod';
import { errorMessage } from '../errors.js';
import type { Logger } from '../log.js';
import { readJsonFile, writeFileAtomic } from '../util/fsx.js';
import { MAX_AGE_LIMIT, type StsPolicy } from './mta-sts-policy.js';

export const CACHE_FILE = 'mta-sts-policies.json';

export interface CachedPolicy {
  id: string;
  policy: StsPolicy;
  /** Epoch milliseconds */
  expiresAt: number;
}

const entrySchema = z.object({
  id: z.string().regex(/^[A-Za-z0-9]{1,32}$/),
  policy: z.object({
    mode: z.enum(['enforce', 'testing', 'none']),
    mx: z.array(z.string()),
    maxAgeSeconds: z.number().int().min(0).max(MAX_AGE_LIMIT),
  }),
  expiresAt: z.number(),
});

const fileSchema = z.object({ version: z.literal(1), policies: z.record(z.string(), z.unknown()) });

export interface StsCacheOptions {
  dataDir: string;
  log: Logger;
  now: () => number;
}

export class StsCache {
  private entries: Promise<Map<string, CachedPolicy>> | undefined;
  /** Writes run one after another, so an older snapshot never lands after a newer one */
  private writing: Promise<void> = Promise.resolve();

  constructor(private readonly options: StsCacheOptions) {}

  private get file(): string {
    return path.join(this.options.dataDir, CACHE_FILE);
  }

  /** The domain's policy while it has not expired */
  async get(domain: string): Promise<CachedPolicy | undefined> {
    const entry = (await this.load()).get(domain);
    return entry && entry.expiresAt > this.options.now() ? entry : undefined;
  }

  /** Remembers the policy and writes the cache; a failed write is logged, the policy still applies */
  async set(domain: string, entry: CachedPolicy): Promise<void> {
    const entries = await this.load();
    entries.set(domain, entry);
    const now = this.options.now();
    const policies = Object.fromEntries([...entries].filter(([, e]) => e.expiresAt > now));
    const text = `${JSON.stringify({ version: 1, policies }, null, 2)}\n`;
    this.writing = this.writing
      .then(() => writeFileAtomic(this.file, text, 0o644))
      .catch((err: unknown) =>
        this.options.log.warn(
          { file: this.file, err: errorMessage(err) },
          'MTA-STS policy cache not saved',
        ),
      );
    await this.writing;
  }

  private load(): Promise<Map<string, CachedPolicy>> {
    this.entries ??= this.read();
    return this.entries;
  }

  private async read(): Promise<Map<string, CachedPolicy>> {
    const { log } = this.options;
    const entries = new Map<string, CachedPolicy>();
    try {
      const parsed = fileSchema.safeParse(
        (await readJsonFile<unknown>(this.file)) ?? { version: 1, policies: {} },
      );
      if (!parsed.success)
        throw new Error(
          `Not an MTA-STS policy cache: ${parsed.error.issues[0]?.message ?? 'bad format'}`,
        );
      for (const [domain, value] of Object.entries(parsed.data.policies)) {
        const entry = entrySchema.safeParse(value);
        if (entry.success) entries.set(domain, entry.data);
        else log.warn({ file: this.file, domain }, 'MTA-STS policy cache: damaged entry ignored');
      }
    } catch (err) {
      log.warn(
        { file: this.file, err: errorMessage(err) },
        'MTA-STS policy cache unreadable; starting with an empty one',
      );
    }
    return entries;
  }
}
