/** edge-relay admin password --password-stdin */
import { AdminCredentials } from '../admin/credentials.js';
import { UsageError } from '../errors.js';
import { ensureDir } from '../util/fsx.js';
import { loadConfig, readPasswordFromStdin, type CommandContext } from './context.js';

export async function adminCommand(ctx: CommandContext): Promise<number> {
  const { config } = await loadConfig(ctx);
  if (ctx.args[0] !== 'password') throw new UsageError(`Unknown admin command "${ctx.args[0] ?? ''}"; use "admin password --password-stdin"`);
  if (!ctx.flags['password-stdin']) throw new UsageError('Give the password on standard input with --password-stdin (never on the command line)');
  await ensureDir(config.dataDir);
  await new AdminCredentials(config.dataDir).set(await readPasswordFromStdin(ctx.stdin));
  ctx.out('Admin password set');
  return 0;
}
