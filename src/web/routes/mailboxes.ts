/** The mailboxes page and /api/mailboxes: list with usage, add, remove, set password */
import { UsageError } from '../../errors.js';
import { jsonFields, textField } from '../body.js';
import type { WebApp, WebContext, WebServices } from '../context.js';
import { mailboxesView, type MailboxRow } from '../views/mailboxes.js';
import { field, redirectWith, render } from './render.js';

/** What these routes use of the relay */
export type MailboxServices = Pick<WebServices, 'store' | 'mailboxes'>;

export function mailboxRoutes(app: WebApp, state: MailboxServices): void {
  const rows = async (): Promise<MailboxRow[]> =>
    Promise.all(
      (await state.mailboxes.names()).map(async (name) => ({
        name,
        ...(await state.mailboxes.usage(name)),
      })),
    );

  /** The store refuses to remove the postmaster mailbox: it is told which one that is */
  const remove = (name: string) =>
    state.mailboxes.remove(name, state.store.config.mailbox.postmaster);

  /** Runs a form action; a UsageError (bad name, weak password) becomes a message on the page */
  const act = async (c: WebContext, work: () => Promise<string>) => {
    try {
      return redirectWith(c, '/mailboxes', { kind: 'ok', text: await work() });
    } catch (err) {
      if (err instanceof UsageError)
        return redirectWith(c, '/mailboxes', { kind: 'error', text: err.message });
      throw err;
    }
  };

  app.get('/mailboxes', async (c) => {
    const list = await rows();
    const config = state.store.config;
    return render(c, state, 'mailboxes', 'Mailboxes', (csrf) =>
      mailboxesView(list, config.mailbox.postmaster, config.pop3.port, csrf),
    );
  });
  app.post('/mailboxes', (c) =>
    act(c, async () => {
      const name = await field(c, 'name');
      await state.mailboxes.add(name, await field(c, 'password'));
      return `Mailbox "${name.toLowerCase()}" added`;
    }),
  );
  app.post('/mailboxes/remove', (c) =>
    act(c, async () => {
      const name = await field(c, 'name');
      await remove(name);
      return `Mailbox "${name}" removed with its messages`;
    }),
  );
  app.post('/mailboxes/password', (c) =>
    act(c, async () => {
      const name = await field(c, 'name');
      await state.mailboxes.setPassword(name, await field(c, 'password'));
      return `Password of "${name}" changed`;
    }),
  );

  app.get('/api/mailboxes', async (c) => c.json(await rows()));
  app.post('/api/mailboxes', async (c) => {
    const body = await jsonFields(c);
    await state.mailboxes.add(textField(body, 'name'), textField(body, 'password'));
    return c.json({ ok: true }, 201);
  });
  app.delete('/api/mailboxes/:name', async (c) => {
    await remove(c.req.param('name'));
    return c.json({ ok: true });
  });
  app.post('/api/mailboxes/:name/password', async (c) => {
    await state.mailboxes.setPassword(
      c.req.param('name'),
      textField(await jsonFields(c), 'password'),
    );
    return c.json({ ok: true });
  });
}
