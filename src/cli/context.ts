/**
 * What every command needs: the configuration the running service uses, the
 * data folder it names, and a way to print. Without --config a command looks
 * where the service's configuration lives, so that on the box
 * `edge-relay queue list` shows the service's queue and not an empty one in
 * the current folder.
 */
import { existsSync, statSync } from 'node:fs';
import path from 'node:path';
import { ConfigStore } from '../config/store.js';
import type { Config } from '../config/schema.js';

/** Where the Debian package and the image keep the service's configuration */
export const SERVICE_CONFIG_FILE = '/etc/edge-relay/config.json';
export const CONFIG_ENV = 'EDGE_RELAY_CONFIG';

export interface CommandContext {
  args: string[];
  configFile: string | undefined;
  flags: Record<string, string | boolean | undefined>;
  out: (text: string) => void;
  /** Remarks for the person (stderr), kept apart from output that scripts read */
  note: (text: string) => void;
  stdin: NodeJS.ReadableStream;
}

export interface ConfigLocation {
  file: string | undefined;
  /** In words, for "Using ..." */
  origin: string;
}

/** --config, else $EDGE_RELAY_CONFIG, else the service's file when it exists, else the embedded defaults */
export function locateConfig(
  flag: string | undefined,
  env: NodeJS.ProcessEnv = process.env,
  exists: (file: string) => boolean = existsSync,
): ConfigLocation {
  if (flag) return { file: flag, origin: `${flag} (--config)` };
  const fromEnv = env[CONFIG_ENV];
  if (fromEnv) return { file: fromEnv, origin: `${fromEnv} (${CONFIG_ENV})` };
  if (exists(SERVICE_CONFIG_FILE))
    return {
      file: SERVICE_CONFIG_FILE,
      origin: `${SERVICE_CONFIG_FILE} (the service's configuration)`,
    };
  return {
    file: undefined,
    origin: `the embedded defaults (no --config, no ${CONFIG_ENV}, no ${SERVICE_CONFIG_FILE})`,
  };
}

/** The configuration alone: for serve, which logs where it came from, and for config check, which prints it */
export async function openConfig(
  ctx: CommandContext,
): Promise<{ store: ConfigStore; config: Config; location: ConfigLocation }> {
  const location = locateConfig(ctx.configFile);
  const store = await ConfigStore.open(location.file);
  return { store, config: store.config, location };
}

/**
 * For the commands that act on the data folder: says which folder, and when
 * run as root on a folder the service owns, acts as the service's user, so
 * that what it writes (a mailbox, a password) stays readable by the service.
 */
export async function loadConfig(
  ctx: CommandContext,
): Promise<{ store: ConfigStore; config: Config }> {
  const { store, config, location } = await openConfig(ctx);
  const dataDir = path.resolve(config.dataDir);
  ctx.note(`Using ${location.origin}; data folder ${dataDir}`);
  actAsOwnerOf(dataDir);
  return { store, config };
}

function actAsOwnerOf(dataDir: string): void {
  if (process.getuid?.() !== 0 || !existsSync(dataDir)) return;
  const { uid, gid } = statSync(dataDir);
  if (uid === 0) return;
  process.setgroups?.([gid]);
  process.setgid?.(gid);
  process.setuid?.(uid);
}

/** Reads a password from standard input: the first line, without its line ending */
export async function readPasswordFromStdin(stdin: NodeJS.ReadableStream): Promise<string> {
  let text = '';
  for await (const chunk of stdin) {
    text += chunk.toString();
    if (text.includes('\n') || text.length > 4096) break;
  }
  return text.split(/\r?\n/)[0] ?? '';
}
