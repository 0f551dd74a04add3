/**
 * edge-relay queue list | show | retry | hold | release | delete
 *
 * Only one process writes the spool: with a server running, the request goes
 * to it (queue/control.ts); with none, the command opens the spool itself.
 */
import { RelayError, UsageError } from '../errors.js';
import { silentLogger } from '../log.js';
import { QueueCommands, type QueueAction } from '../queue/commands.js';
import { connectQueueControl, type QueueOps } from '../queue/control.js';
import { parseQueueId } from '../spool/ids.js';
import type { QueueListItem } from '../spool/records.js';
import { Spool, controlSocketPath } from '../spool/spool.js';
import { formatDuration } from '../util/duration.js';
import { BusyError } from '../util/locks.js';
import { plural } from '../util/plural.js';
import { loadConfig, type CommandContext } from './context.js';

export async function queueCommand(ctx: CommandContext): Promise<number> {
  const { config } = await loadConfig(ctx);
  const [sub] = ctx.args;
  const server = await connectQueueControl(controlSocketPath(config.dataDir));
  if (server) return queueSubcommand(ctx, server);
  const spool = await openSpool(config.dataDir, sub === 'list' || sub === 'show');
  try {
    return await queueSubcommand(ctx, new QueueCommands(spool, () => undefined));
  } finally {
    await spool.close();
  }
}

/** No server running: reading needs no lock; a change takes the writer's place (and first upgrades an earlier layout) */
async function openSpool(dataDir: string, readOnly: boolean): Promise<Spool> {
  const log = silentLogger();
  if (readOnly) return Spool.open(dataDir, log, { writable: false });
  const spool = await Spool.open(dataDir, log).catch((err: unknown) => {
    if (!(err instanceof BusyError)) throw err;
    throw new RelayError(
      'The queue is in use by a server that does not answer yet (starting or stopping); try again in a moment',
      { kind: 'temporary' },
    );
  });
  await spool.recover();
  return spool;
}

async function queueSubcommand(ctx: CommandContext, admin: QueueOps): Promise<number> {
  const [sub, idText] = ctx.args;
  switch (sub) {
    case 'list': {
      const items = await admin.list();
      ctx.out(ctx.flags.json ? JSON.stringify(items, null, 2) : formatTable(items));
      return 0;
    }
    case 'show': {
      const { item, headers } = await admin.show(parseQueueId(requireArg(idText, 'show')));
      ctx.out(`${JSON.stringify(item, null, 2)}\n\n${headers.trimEnd()}`);
      return 0;
    }
    case 'retry':
      if (ctx.flags.all) {
        ctx.out(`Retrying ${plural(await admin.retryAll(), 'message')} now`);
        return 0;
      }
      return act(ctx, admin, 'retry', idText);
    case 'hold':
    case 'release':
    case 'delete':
      return act(ctx, admin, sub, idText);
    default:
      throw new UsageError(
        `Unknown queue command "${sub ?? ''}"; use list, show, retry, hold, release or delete`,
      );
  }
}

async function act(
  ctx: CommandContext,
  admin: QueueOps,
  action: QueueAction,
  idText: string | undefined,
): Promise<number> {
  const id = parseQueueId(requireArg(idText, action));
  await admin.apply(action, id);
  ctx.out(
    `${id}: ${{ retry: 'will be retried now', hold: 'on hold', release: 'released, will be retried now', delete: 'deleted' }[action]}`,
  );
  return 0;
}

function requireArg(value: string | undefined, command: string): string {
  if (!value)
    throw new UsageError(`queue ${command} needs a queue id (see "edge-relay queue list")`);
  return value;
}

function formatTable(items: QueueListItem[]): string {
  if (items.length === 0) return 'The queue is empty';
  const now = Date.now();
  const lines = items.map((item) => {
    const age = formatDuration(now - Date.parse(item.receivedAt));
    const rcpts = item.recipients.map((r) => `${r.address} (${r.status})`).join(', ');
    const error = item.lastError ? `\n    last error: ${item.lastError}` : '';
    const heldBack = item.heldBack ? `\n    ${item.heldBack}` : '';
    return `${item.id}  ${String(item.size).padStart(9)} B  ${age.padStart(4)}  ${plural(item.attempts, 'try', 'tries').padStart(9)}  <${item.from}> -> ${rcpts}${error}${heldBack}`;
  });
  return `${lines.join('\n')}\n-- ${plural(items.length, 'message')}`;
}
