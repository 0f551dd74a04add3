/** edge-relay queue list | show | retry | hold | release | delete */
import { UsageError } from '../errors.js';
import { silentLogger } from '../log.js';
import { QueueAdmin, type QueueAction } from '../queue/admin.js';
import { parseQueueId } from '../spool/ids.js';
import type { QueueListItem } from '../spool/records.js';
import { Spool } from '../spool/spool.js';
import { formatDuration } from '../util/duration.js';
import { nudgeServer } from '../util/serve-lock.js';
import { plural } from '../util/plural.js';
import { loadConfig, type CommandContext } from './context.js';

export async function queueCommand(ctx: CommandContext): Promise<number> {
  const { config } = await loadConfig(ctx);
  const spool = await Spool.open(config.dataDir, silentLogger());
  const admin = new QueueAdmin(spool, () => void nudgeServer(config.dataDir));
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
      throw new UsageError(`Unknown queue command "${sub ?? ''}"; use list, show, retry, hold, release or delete`);
  }
}

async function act(ctx: CommandContext, admin: QueueAdmin, action: QueueAction, idText: string | undefined): Promise<number> {
  const id = parseQueueId(requireArg(idText, action));
  await admin.apply(action, id);
  ctx.out(`${id}: ${{ retry: 'will be retried now', hold: 'on hold', release: 'released, will be retried now', delete: 'deleted' }[action]}`);
  return 0;
}

function requireArg(value: string | undefined, command: string): string {
  if (!value) throw new UsageError(`queue ${command} needs a queue id (see "edge-relay queue list")`);
  return value;
}

function formatTable(items: QueueListItem[]): string {
  if (items.length === 0) return 'The queue is empty';
  const now = Date.now();
  const lines = items.map((item) => {
    const age = formatDuration(now - Date.parse(item.receivedAt));
    const rcpts = item.recipients.map((r) => `${r.address} (${r.status})`).join(', ');
    const error = item.lastError ? `\n    last error: ${item.lastError}` : '';
    return `${item.id}  ${String(item.size).padStart(9)} B  ${age.padStart(4)}  ${plural(item.attempts, 'try', 'tries').padStart(9)}  <${item.from}> -> ${rcpts}${error}`;
  });
  return `${lines.join('\n')}\n-- ${plural(items.length, 'message')}`;
}
