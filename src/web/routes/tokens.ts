/** The API tokens page and /api/tokens */
import { DEFAULT_SCOPE, parseScope } from '../../web-auth/tokens.js';
import { UsageError } from '../../errors.js';
import { jsonFields, textField } from '../body.js';
import type { WebApp, WebServices } from '../context.js';
import { tokensView } from '../views/tokens.js';
import { field, redirectWith, render } from './render.js';

/** What these routes use of the relay */
export type TokenServices = Pick<WebServices, 'store' | 'tokens'>;

export function tokenRoutes(app: WebApp, state: TokenServices): void {
  app.get('/tokens', async (c) => {
    const tokens = await state.tokens.list();
    return render(c, state, 'tokens', 'API tokens', (csrf) => tokensView(tokens, csrf));
  });
  app.post('/tokens', async (c) => {
    try {
      const created = await state.tokens.create(
        await field(c, 'label'),
        parseScope((await field(c, 'scope')) || DEFAULT_SCOPE),
      );
      const tokens = await state.tokens.list();
      return render(c, state, 'tokens', 'API tokens', (csrf) =>
        tokensView(tokens, csrf, { label: created.info.label, token: created.token }),
      );
    } catch (err) {
      if (err instanceof UsageError)
        return redirectWith(c, '/tokens', { kind: 'error', text: err.message });
      throw err;
    }
  });
  app.post('/tokens/revoke', async (c) => {
    await state.tokens.revoke(await field(c, 'id'));
    return redirectWith(c, '/tokens', { kind: 'ok', text: 'Token revoked' });
  });

  app.get('/api/tokens', async (c) => c.json(await state.tokens.list()));
  app.post('/api/tokens', async (c) => {
    const body = await jsonFields(c);
    const created = await state.tokens.create(
      textField(body, 'label'),
      parseScope(textField(body, 'scope') || DEFAULT_SCOPE),
    );
    return c.json({ ...created.info, token: created.token }, 201);
  });
  app.delete('/api/tokens/:id', async (c) => {
    await state.tokens.revoke(c.req.param('id'));
    return c.json({ ok: true });
  });
}
