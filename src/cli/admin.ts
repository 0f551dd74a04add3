/**
 * edge-relay admin password --password-stdin
 * edge-relay admin token create NAME [--scope metrics|read|admin] | list | revoke ID
 *
 * The same stores the web page uses; a running relay reads them on each
 * request, so a change here counts at once without a restart.
 */
import { AdminCredentials } from '../web-auth/credentials.js';
import { ApiTokens, DEFAULT_SCOPE, parseScope } from '../web-auth/tokens.js';
import { UsageError } from '../errors.js';
import { ensureDir } from '../util/fsx.js';
import { SetupToken } from '../web-auth/setup-token.js';
import { loadConfig, readPasswordFromStdin, type CommandContext } from './context.js';

const USAGE =
  'use "admin password --password-stdin" or "admin token create NAME [--scope metrics|read|admin] | list | revoke ID"';

export async function adminCommand(ctx: CommandContext): Promise<number> {
  const { config } = await loadConfig(ctx);
  await ensureDir(config.dataDir);
  const [sub, ...rest] = ctx.args;
  if (sub === 'password') return setPassword(ctx, config.dataDir);
  if (sub === 'token') return tokenCommand(ctx, new ApiTokens(config.dataDir), rest);
  throw new UsageError(`Unknown admin command "${sub ?? ''}"; ${USAGE}`);
}

async function setPassword(ctx: CommandContext, dataDir: string): Promise<number> {
  if (!ctx.flags['password-stdin'])
    throw new UsageError(
      'Give the password on standard input with --password-stdin (never on the command line)',
    );
  await new AdminCredentials(dataDir).set(await readPasswordFromStdin(ctx.stdin));
  // The one-time setup token has nothing left to unlock; a stale copy on disk would only mislead
  await new SetupToken(dataDir).retire();
  ctx.out('Admin password set');
  return 0;
}

async function tokenCommand(
  ctx: CommandContext,
  tokens: ApiTokens,
  [sub, ...args]: string[],
): Promise<number> {
  switch (sub) {
    case 'create': {
      const scope = ctx.flags.scope;
      const { info, token } = await tokens.create(
        args.join(' '),
        typeof scope === 'string' ? parseScope(scope) : DEFAULT_SCOPE,
      );
      ctx.out(
        `Token "${info.label}" created (id ${info.id}) with scope ${info.scope}. Copy it now; it is not shown again:\n${token}`,
      );
      return 0;
    }
    case 'list': {
      const list = await tokens.list();
      if (list.length === 0) ctx.out('No API tokens yet');
      for (const t of list) ctx.out(`${t.id}  ${t.createdAt}  ${t.scope.padEnd(7)}  ${t.label}`);
      return 0;
    }
    case 'revoke': {
      const [id] = args;
      if (!id)
        throw new UsageError('admin token revoke needs the token id (see "admin token list")');
      await tokens.revoke(id);
      ctx.out(`Token ${id} revoked`);
      return 0;
    }
    default:
      throw new UsageError(
        `Unknown admin token command "${sub ?? ''}"; use create NAME [--scope metrics|read|admin], list or revoke ID`,
      );
  }
}
