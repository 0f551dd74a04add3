/**
 * The admin web application: Hono routes and views. Order matters: security
 * headers wrap everything; public routes come before the login gate; every
 * route after the gate needs a session or a token. Loaded by the web server
 * on its first request (src/web/server.ts), never by an idle relay.
 */
import { Hono } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { ConfigError, RelayError, UsageError, errorMessage } from '../errors.js';
import { BusyError } from '../util/locks.js';
import { authRoutes, logoutRoute, requireLogin } from './auth.js';
import type { WebEnv, WebState } from './context.js';
import { dashboardRoutes } from './routes/dashboard.js';
import { deviceRoutes } from './routes/devices.js';
import { senderRoutes } from './routes/sender.js';
import { mailboxRoutes } from './routes/mailboxes.js';
import { metricsRoutes } from './routes/metrics.js';
import { publicRoutes } from './routes/public.js';
import { queueRoutes } from './routes/queue.js';
import { settingsRoutes } from './routes/settings.js';
import { testMailRoutes } from './routes/test-mail.js';
import { tokenRoutes } from './routes/tokens.js';
import { securityHeaders } from './security.js';

/** Every form and API body is small; the largest is a settings patch */
const MAX_BODY_BYTES = 256 * 1024;
const TOO_LARGE = `Request body too large: the limit is ${MAX_BODY_BYTES} bytes (${MAX_BODY_BYTES / 1024} KB)`;

/** A person's mistake (unknown id, weak password, bad setting) is a 400; anything else is ours */
function errorStatus(err: unknown): 400 | 503 | 500 {
  if (err instanceof UsageError || err instanceof ConfigError) return 400;
  if (err instanceof BusyError) return 503;
  return err instanceof RelayError && err.kind === 'not-found' ? 400 : 500;
}

export function buildApp(state: WebState): Hono<WebEnv> {
  const app = new Hono<WebEnv>();
  app.use('*', securityHeaders(state.https));
  app.use(
    '*',
    bodyLimit({
      maxSize: MAX_BODY_BYTES,
      onError: (c) =>
        c.req.path.startsWith('/api/') ? c.json({ error: TOO_LARGE }, 413) : c.text(TOO_LARGE, 413),
    }),
  );
  publicRoutes(app, state);
  authRoutes(app, state);
  app.use('*', requireLogin(state));
  logoutRoute(app, state);
  for (const routes of [
    dashboardRoutes,
    queueRoutes,
    settingsRoutes,
    mailboxRoutes,
    deviceRoutes,
    senderRoutes,
    testMailRoutes,
    tokenRoutes,
    metricsRoutes,
  ])
    routes(app, state);
  app.notFound((c) =>
    c.req.path.startsWith('/api/')
      ? c.json({ error: `No such API route "${c.req.path}"` }, 404)
      : c.text('Not found', 404),
  );
  app.onError((err, c) => {
    const status = errorStatus(err);
    if (status === 500)
      state.log.error({ err: errorMessage(err), path: c.req.path }, 'Web request failed');
    return c.req.path.startsWith('/api/')
      ? c.json({ error: errorMessage(err) }, status)
      : c.text(errorMessage(err), status);
  });
  return app;
}
