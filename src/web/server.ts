/**
 * The admin web server: node's http (or https) server, listening from the
 * start. Hono, the routes and the views load on the first request
 * (src/web/app.ts): an idle relay does not hold them in memory.
 */
import {
  createServer as createHttpServer,
  type IncomingMessage,
  type ServerResponse,
} from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { errorMessage } from '../errors.js';
import { lazy } from '../util/lazy.js';
import type { WebServices, WebState } from './context.js';
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
const LOGIN_THROTTLE = {
  perClient: { baseMs: 500, maxMs: 16_000 },
  overall: { baseMs: 500, maxMs: 500 },
  maxWaitMs: 3_000,
  maxWaiting: 5,
} as const;

type RequestListener = (incoming: IncomingMessage, outgoing: ServerResponse) => unknown;

/** Hono's adapter and our routes, imported once when the first request arrives */
function lazyApp(state: WebState, hostname: string): () => Promise<RequestListener> {
  return lazy(async () => {
    const [{ getRequestListener }, { buildApp }] = await Promise.all([
      import('@hono/node-server'),
      import('./app.js'),
    ]);
    return getRequestListener(buildApp(state).fetch, { hostname });
  });
}

export async function startWeb(options: WebOptions): Promise<WebServer> {
  const state: WebState = {
    ...options,
    sessions: new SessionStore(),
    throttle: new LoginThrottle(LOGIN_THROTTLE),
    https: options.tls !== undefined,
  };
  const app = lazyApp(state, options.host);
  const onRequest = (incoming: IncomingMessage, outgoing: ServerResponse) =>
    void app().then(
      (listener) => listener(incoming, outgoing),
      (err: unknown) => {
        state.log.error({ err: errorMessage(err), path: incoming.url }, 'Web request failed');
        outgoing
          .writeHead(500, { 'content-type': 'text/plain; charset=utf-8' })
          .end('The admin page could not be loaded');
      },
    );
  const server = options.tls
    ? createHttpsServer({ key: options.tls.key, cert: options.tls.cert }, onRequest)
    : createHttpServer(onRequest);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  return {
    address: server.address() as AddressInfo,
    stop: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
