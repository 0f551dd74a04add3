/**
 * The configuration store: the only module that uses lowdb. The file holds
 * only what differs from the defaults; the defaults fill in the rest. Writes
 * are atomic and the file is mode 0600 (it may hold the upstream password).
 *
 * The file is also the admin's: a hand edit is picked up when the file
 * changes or on SIGHUP (`systemctl reload edge-relay`), and a page that was
 * opened before such an edit cannot silently overwrite it (see `revision`).
 */
import { createHash } from 'node:crypto';
import { promises as fs, watch, type FSWatcher } from 'node:fs';
import path from 'node:path';
import { Low, type Adapter } from 'lowdb';
import { ConfigError, RelayError, errorMessage } from '../errors.js';
import type { Logger } from '../log.js';
import { writeFileAtomic } from '../util/fsx.js';
import { DEFAULT_CONFIG } from './defaults.js';
import { deepMerge, isPlainObject, type JsonObject } from './merge.js';
import type { Config } from './schema.js';
import { refusePrototypeKeys, resolveConfig } from './validate.js';

/** Editors write a file in steps: wait for the last one before reading it */
const SETTLE_MS = 250;

class AtomicJsonFile implements Adapter<JsonObject> {
  /** The file's text as last read, valid or not */
  lastRead = '';
  /** The text whose settings are in use (last valid read, or our last write): what `revision` is made of */
  text = '';

  constructor(readonly file: string) {}

  async read(): Promise<JsonObject | null> {
    let text: string;
    try {
      text = await fs.readFile(this.file, 'utf8');
    } catch (err) {
      throw new ConfigError(`Cannot read config file ${this.file}: ${errorMessage(err)}`, err);
    }
    this.lastRead = text;
    let data: unknown;
    try {
      data = JSON.parse(text);
    } catch (err) {
      throw new ConfigError(
        `Config file ${this.file} is not valid JSON: ${errorMessage(err)}`,
        err,
      );
    }
    if (!isPlainObject(data))
      throw new ConfigError(`Config file ${this.file} must hold a JSON object`);
    return data;
  }

  async write(data: JsonObject): Promise<void> {
    const text = `${JSON.stringify(data, null, 2)}\n`;
    await writeFileAtomic(this.file, text, 0o600);
    this.text = this.lastRead = text;
  }
}

/** The page's view of the file is out of date: it was changed by hand (or by another admin) since */
export class ConfigChangedError extends RelayError {
  constructor(file: string) {
    super(
      `The config file ${file} was changed outside this page since you opened it (by hand or by another admin). Nothing was saved: the page now shows the file's settings; make your change again`,
      { kind: 'usage' },
    );
    this.name = 'ConfigChangedError';
  }
}

/** What `overrides` sets that the defaults do not already say: a page save writes only this */
export function withoutDefaults(
  overrides: JsonObject,
  defaults: unknown = DEFAULT_CONFIG,
): JsonObject {
  const out: JsonObject = {};
  for (const [key, value] of Object.entries(overrides)) {
    const fallback = isPlainObject(defaults) ? defaults[key] : undefined;
    if (isPlainObject(value) && isPlainObject(fallback)) {
      const inner = withoutDefaults(value, fallback);
      if (Object.keys(inner).length) out[key] = inner;
    } else if (JSON.stringify(value) !== JSON.stringify(fallback)) out[key] = value;
  }
  return out;
}

export type ConfigListener = (config: Config) => void;

export class ConfigStore {
  private listeners: ConfigListener[] = [];
  private watcher: FSWatcher | undefined;

  private constructor(
    private readonly db: Low<JsonObject> | undefined,
    private readonly adapter: AtomicJsonFile | undefined,
    private current: Config,
    readonly source: string,
  ) {}

  /** Opens FILE, or the embedded defaults when no file is given */
  static async open(file?: string): Promise<ConfigStore> {
    if (!file)
      return new ConfigStore(
        undefined,
        undefined,
        resolveConfig({}, 'the embedded defaults'),
        'the embedded defaults',
      );
    const adapter = new AtomicJsonFile(file);
    const db = new Low<JsonObject>(adapter, {});
    await db.read();
    const config = resolveConfig(db.data, file);
    adapter.text = adapter.lastRead;
    return new ConfigStore(db, adapter, config, file);
  }

  get config(): Config {
    return this.current;
  }

  get persistent(): boolean {
    return this.db !== undefined;
  }

  /** Names the file's content as this store last saw it; a page carries it to notice a change made under it */
  get revision(): string {
    return createHash('sha256')
      .update(this.adapter?.text ?? '')
      .digest('base64url')
      .slice(0, 16);
  }

  /** Calls `listener` with every new config; returns what removes it again (a stopping service calls it) */
  onChange(listener: ConfigListener): () => void {
    this.listeners.push(listener);
    return () => {
      this.listeners = this.listeners.filter((kept) => kept !== listener);
    };
  }

  /**
   * Reads the file again and applies it when it changed. A file with an
   * error changes nothing and throws, naming the file and the key.
   */
  async reload(): Promise<boolean> {
    if (!this.db || !this.adapter) return false;
    const data = await this.adapter.read();
    if (this.adapter.lastRead === this.adapter.text) return false;
    // A broken file throws here and stays unaccepted: the next save reads it again instead of writing over it
    const next = resolveConfig(data, this.source);
    this.db.data = data ?? {};
    this.adapter.text = this.adapter.lastRead;
    this.apply(next);
    return true;
  }

  /**
   * Validates the merged result first: a bad patch changes nothing. A hand
   * edit of the file is taken in first, never overwritten; `basedOn` (the
   * revision a page was shown) refuses a patch made from an older view.
   */
  async update(patch: JsonObject, basedOn?: string): Promise<Config> {
    // Merging drops such keys: refuse them here, so the caller hears that none of it applied
    refusePrototypeKeys(patch, 'the new settings');
    await this.reload();
    if (basedOn !== undefined && basedOn !== this.revision)
      throw new ConfigChangedError(this.source);
    const overrides = deepMerge(this.db?.data ?? {}, patch) as JsonObject;
    const next = resolveConfig(overrides, 'the new settings');
    if (this.db) {
      this.db.data = withoutDefaults(overrides);
      await this.db.write();
    }
    this.apply(next);
    return next;
  }

  /** Follows hand edits of the file: applies a valid one, logs a broken one and keeps the settings in use */
  watch(log: Logger): void {
    if (!this.adapter || this.watcher) return;
    const name = path.basename(this.source);
    let timer: NodeJS.Timeout | undefined;
    // The folder, not the file: an editor or our own atomic write replaces the file with a new one
    this.watcher = watch(path.dirname(this.source), (_event, changed) => {
      if (changed !== name) return;
      clearTimeout(timer);
      timer = setTimeout(() => void this.reloadLogged(log, 'the file changed'), SETTLE_MS);
    });
    this.watcher.on('error', (err) =>
      log.warn(
        { err: errorMessage(err), file: this.source },
        'Stopped watching the config file; reload with SIGHUP',
      ),
    );
  }

  async reloadLogged(log: Logger, reason: string): Promise<void> {
    try {
      if (await this.reload())
        log.info({ file: this.source, reason }, 'Config file read again: its settings are in use');
    } catch (err) {
      log.error(
        { file: this.source, reason, err: errorMessage(err) },
        'Config file has an error: still using the previous settings',
      );
    }
  }

  close(): void {
    this.watcher?.close();
    this.watcher = undefined;
  }

  private apply(next: Config): void {
    this.current = next;
    for (const listener of this.listeners) listener(next);
  }
}
