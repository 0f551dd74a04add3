/** The test-mail page and POST /api/test-mail */
import { jsonFields, textField } from '../body.js';
import type { WebApp, WebServices } from '../context.js';
import { sendTestMail } from '../test-mail.js';
import { testMailView } from '../views/test-mail.js';
import { field, render } from './render.js';

/** What these routes use of the relay */
export type TestMailServices = Pick<WebServices, 'store' | 'spool' | 'health' | 'deliverer'>;

export function testMailRoutes(app: WebApp, state: TestMailServices): void {
  const send = (to: string) =>
    sendTestMail(
      {
        config: state.store.config,
        spool: state.spool,
        health: state.health,
        deliverer: state.deliverer,
      },
      to,
    );

  app.get('/test-mail', (c) =>
    render(c, state, 'test-mail', 'Send a test mail', (csrf) => testMailView(csrf, '')),
  );
  app.post('/test-mail', async (c) => {
    const to = await field(c, 'to');
    const result = await send(to);
    return render(c, state, 'test-mail', 'Send a test mail', (csrf) =>
      testMailView(csrf, to, result),
    );
  });

  app.post('/api/test-mail', async (c) => {
    const result = await send(textField(await jsonFields(c), 'to'));
    return c.json(result, result.kind === 'refused' ? 400 : 200);
  });
}
