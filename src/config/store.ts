/**
 * The configuration store: the only module that uses lowdb. The file holds
 * only what the admin changed; the defaults fill in the rest. Writes are
 * atomic and the file is mode 0600 (it may hold the upstream password).
 */
import { promises as fs } from 'node:fs';
import { Low, type Adapter } from 'lowdb';
import { ConfigError, errorMessage } from '../errors.js';
import { writeFileAtomic } from '../util/fsx.js';
import { deepMerge, isPlainObject, type JsonObject } from './merge.js';
import type { Config } from './schema.js';
import { refusePrototypeKeys, resolveConfig } from './validate.js';

class AtomicJsonFile implements Adapter<JsonObject> {
  constructor(private readonly file: string) {}

  async read(): Promise<JsonObject | null> {
    let text: string;
    try {
      text = await fs.readFile(this.file, 'utf8');
    } catch (err) {
      throw new ConfigError(`Cannot read config file ${this.file}: ${errorMessage(err)}`, err);
    }
    let data: unknown;
    try {
      data = JSON.parse(text);
    } catch (err) {
      throw new ConfigError(`Config file ${this.file} is not valid JSON: ${errorMessage(err)}`, err);
    }
    if (!isPlainObject(data)) throw new ConfigError(`Config file ${this.file} must hold a JSON object`);
    return data;
  }

  async write(data: JsonObject): Promise<void> {
    await writeFileAtomic(this.file, `${JSON.stringify(data, null, 2)}\n`, 0o600);
  }
}

export type ConfigListener = (config: Config) => void;

export class ConfigStore {
  private listeners: ConfigListener[] = [];

  private constructor(
    private readonly db: Low<JsonObject> | undefined,
    private current: Config,
    readonly source: string,
  ) {}

  /** Opens FILE, or the embedded defaults when no file is given */
  static async open(file?: string): Promise<ConfigStore> {
    if (!file) return new ConfigStore(undefined, resolveConfig({}, 'the embedded defaults'), 'the embedded defaults');
    const db = new Low<JsonObject>(new AtomicJsonFile(file), {});
    await db.read();
    return new ConfigStore(db, resolveConfig(db.data, file), file);
  }

  get config(): Config {
    return this.current;
  }

  get persistent(): boolean {
    return this.db !== undefined;
  }

  onChange(listener: ConfigListener): void {
    this.listeners.push(listener);
  }

  /** Validates the merged result first: a bad patch changes nothing */
  async update(patch: JsonObject): Promise<Config> {
    // Merging drops such keys: refuse them here, so the caller hears that none of it applied
    refusePrototypeKeys(patch, 'the new settings');
    const overrides = deepMerge(this.db?.data ?? {}, patch) as JsonObject;
    const next = resolveConfig(overrides, 'the new settings');
    if (this.db) {
      this.db.data = overrides;
      await this.db.write();
    }
    this.current = next;
    for (const listener of this.listeners) listener(next);
    return next;
  }
}
