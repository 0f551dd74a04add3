/** The queue page and /api/queue: list, show, retry, hold, release, delete (one or many) */
import { UsageError } from '../../errors.js';
import type { QueueAction } from '../../queue/commands.js';
import { parseQueueId } from '../../spool/ids.js';
import { BusyError } from '../../util/locks.js';
import { plural } from '../../util/plural.js';
import type { WebApp, WebServices } from '../context.js';
import { messageView, queueView } from '../views/queue.js';
import { field, fields, redirectWith, render } from './render.js';

/** What these routes use of the relay */
export type QueueServices = Pick<WebServices, 'store' | 'queue'>;

const ACTIONS: ReadonlySet<string> = new Set<QueueAction>(['retry', 'hold', 'release', 'delete']);

function parseAction(text: string): QueueAction {
  if (!ACTIONS.has(text)) throw new UsageError(`Unknown queue action "${text}"`);
  return text as QueueAction;
}

/** A delivery attempt holds the message's lock for a moment: wait for it briefly instead of failing the click */
async function whenFree(work: () => Promise<void>): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await work();
    } catch (err) {
      if (!(err instanceof BusyError) || attempt >= BUSY_RETRIES) throw err;
      await new Promise((resolve) => setTimeout(resolve, BUSY_WAIT_MS));
    }
  }
}

const BUSY_RETRIES = 10;
const BUSY_WAIT_MS = 250;

const PAST: Record<QueueAction, string> = {
  retry: 'will be retried now',
  hold: 'put on hold',
  release: 'released',
  delete: 'deleted',
};

export function queueRoutes(app: WebApp, state: QueueServices): void {
  const apply = async (action: QueueAction, ids: string[]): Promise<number> => {
    for (const id of ids) await whenFree(() => state.queue.apply(action, parseQueueId(id)));
    return ids.length;
  };

  app.get('/queue', async (c) => {
    const items = await state.queue.list();
    return render(c, state, 'queue', 'Queue', (csrf) => queueView(items, csrf));
  });

  app.get('/queue/:id', async (c) => {
    const { item, headers } = await state.queue.show(parseQueueId(c.req.param('id')));
    return render(c, state, 'queue', `Message ${item.id}`, (csrf) =>
      messageView(item, headers, csrf),
    );
  });

  app.post('/queue', async (c) => {
    const command = await field(c, 'do');
    try {
      if (command === 'retry-all')
        return redirectWith(c, '/queue', {
          kind: 'ok',
          text: `${plural(await state.queue.retryAll(), 'message')} will be retried now`,
        });
      const [actionText = '', single] = command.split(':');
      const action = parseAction(actionText);
      const ids = single ? [single] : await fields(c, 'ids');
      if (ids.length === 0)
        return redirectWith(c, '/queue', {
          kind: 'error',
          text: 'Select one or more messages first',
        });
      const count = await apply(action, ids);
      return redirectWith(c, '/queue', {
        kind: 'ok',
        text: `${plural(count, 'message')} ${PAST[action]}`,
      });
    } catch (err) {
      if (err instanceof UsageError || err instanceof BusyError)
        return redirectWith(c, '/queue', { kind: 'error', text: err.message });
      throw err;
    }
  });

  app.get('/api/queue', async (c) => c.json(await state.queue.list()));
  app.get('/api/queue/:id', async (c) =>
    c.json(await state.queue.show(parseQueueId(c.req.param('id')))),
  );
  app.post('/api/queue/retry-all', async (c) => c.json({ retried: await state.queue.retryAll() }));
  app.post('/api/queue/:id/:action', async (c) => {
    await apply(parseAction(c.req.param('action')), [c.req.param('id')]);
    return c.json({ ok: true });
  });
}
