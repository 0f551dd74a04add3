/**
 * The admin web server: Hono on node's http (or https) server. Order
 * matters: security headers wrap everything; public routes come before the
 * login gate; every route after the gate needs a session or a token.
 */
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { serve, type ServerType } from '@hono/node-server';
import { Hono } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { ConfigError, RelayError, UsageError, errorMessage } from '../errors.js';
import { BusyError } from '../util/locks.js';
import { authRoutes, logoutRoute, requireLogin } from './auth.js';
import type { WebEnv, WebServices, WebState } from './context.js';
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
import { SessionStore } from './sessions.js';
import { LoginThrottle } from '../util/login-throttle.js';

export interface WebOptions extends WebServices {
  host: string;
  port: number;
  /** Serve HTTPS with this key and certificate */
  tls?: { key: string | Buffer; cert: string | Buffer };
}

export interface WebServer {
  address: AddressInfo;
  stop(): Promise<void>;
}

/**
 * Admin password and setup token guessing: per address the wait doubles from
 * 0.5 s to 16 s after each failure; after any failure from anywhere the next
 * check waits 0.5 s (at most 2 guesses a second in all). Nobody waits more
 * than 3 s for an answer: beyond that the page says how long to wait
 */
const LOGIN_THROTTLE = { perClient: { baseMs: 500, maxMs: 16_000 }, overall: { baseMs: 500, maxMs: 500 }, maxWaitMs: 3_000, maxWaiting: 5 } as const;

/** Every form and API body is small; the largest is a settings patch */
const MAX_BODY_BYTES = 256 * 1024;
const TOO_LARGE = `Request body too large: the limit is ${MAX_BODY_BYTES} bytes (${MAX_BODY_BYTES / 1024} KB)`;

/** A person's mistake (bad id, weak password, bad setting) is a 400; anything else is ours */
function errorStatus(err: unknown): 400 | 503 | 500 {
  if (err instanceof UsageError || err instanceof ConfigError) return 400;
  if (err instanceof BusyError) return 503;
  return err instanceof RelayError && err.kind === 'permanent' ? 400 : 500;
}

export function buildApp(state: WebState): Hono<WebEnv> {
  const app = new Hono<WebEnv>();
  app.use('*', securityHeaders(state.https));
  app.use('*', bodyLimit({ maxSize: MAX_BODY_BYTES, onError: (c) => (c.req.path.startsWith('/api/') ? c.json({ error: TOO_LARGE }, 413) : c.text(TOO_LARGE, 413)) }));
  publicRoutes(app, state);
  authRoutes(app, state);
  app.use('*', requireLogin(state));
  logoutRoute(app, state);
  for (const routes of [dashboardRoutes, queueRoutes, settingsRoutes, mailboxRoutes, deviceRoutes, senderRoutes, testMailRoutes, tokenRoutes, metricsRoutes]) routes(app, state);
  app.notFound((c) => (c.req.path.startsWith('/api/') ? c.json({ error: `No such API route "${c.req.path}"` }, 404) : c.text('Not found', 404)));
  app.onError((err, c) => {
    const status = errorStatus(err);
    if (status === 500) state.log.error({ err: errorMessage(err), path: c.req.path }, 'Web request failed');
    return c.req.path.startsWith('/api/') ? c.json({ error: errorMessage(err) }, status) : c.text(errorMessage(err), status);
  });
  return app;
}

export async function startWeb(options: WebOptions): Promise<WebServer> {
  const state: WebState = { ...options, sessions: new SessionStore(), throttle: new LoginThrottle(LOGIN_THROTTLE), https: options.tls !== undefined };
  const app = buildApp(state);
  const server: ServerType = await new Promise((resolve, reject) => {
    const created = serve(
      {
        fetch: app.fetch,
        hostname: options.host,
        port: options.port,
        ...(options.tls ? { createServer: createHttpsServer, serverOptions: { key: options.tls.key, cert: options.tls.cert } } : {}),
      },
      () => resolve(created),
    );
    created.once('error', reject);
  });
  return {
    address: server.address() as AddressInfo,
    stop: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        if ('closeAllConnections' in server) server.closeAllConnections();
      }),
  };
}
