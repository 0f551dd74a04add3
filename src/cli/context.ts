/** What every command needs: the config (from --config or the defaults) and a way to print */
import { ConfigStore } from '../config/store.js';
import type { Config } from '../config/schema.js';

export interface CommandContext {
  args: string[];
  configFile: string | undefined;
  flags: Record<string, string | boolean | undefined>;
  out: (text: string) => void;
  stdin: NodeJS.ReadableStream;
}

export async function loadConfig(ctx: CommandContext): Promise<{ store: ConfigStore; config: Config }> {
  const store = await ConfigStore.open(ctx.configFile);
  return { store, config: store.config };
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
