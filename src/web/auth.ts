/**
 * Who may do what: first-start setup (setup token), login and logout, and
 * the gate in front of everything else. Pages need a session; /api and
 * /metrics also take a bearer token, within its scope. Every state-changing
 * request made with a session must carry that session's CSRF token.
 */
import type { Context, MiddlewareHandler } from 'hono';
import { getConnInfo } from '@hono/node-server/conninfo';
import { deleteCookie, getCookie, setCookie } from 'hono/cookie';
import { UsageError } from '../errors.js';
import { parseDuration } from '../util/duration.js';
import { VERSION } from '../version.js';
import { formBody } from './body.js';
import type { WebApp, WebState } from './context.js';
import { scopeCovers, type TokenScope } from '../web-auth/tokens.js';
import type { LoginAttempt } from '../util/login-throttle.js';
import { sameSecret } from '../util/password.js';
import { SESSION_COOKIE, type Session } from './sessions.js';
import { loginPage, problemPage, setupPage } from './views/auth-pages.js';

/** What sign-in uses: the admin's credentials, sessions and the guessing brake */
export type AuthServices = Pick<
  WebState,
  'store' | 'log' | 'credentials' | 'setup' | 'tokens' | 'sessions' | 'throttle' | 'https'
>;

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);
const CSRF_REFUSED = 'Missing or wrong CSRF token (the form is from an old page or another site)';
const DEFAULT_TTL_MS = 12 * 3_600_000;

const clientOf = (c: Context): string => getConnInfo(c).remote.address ?? 'unknown';

const wantsJson = (path: string): boolean =>
  path.startsWith('/api/') || path === '/api' || path === '/metrics';

/** The least scope a bearer token needs for a request: reading metrics, reading anything, or changing something */
function scopeNeeded(method: string, path: string): TokenScope {
  if (!SAFE_METHODS.has(method)) return 'admin';
  return path === '/metrics' ? 'metrics' : 'read';
}

function setSessionCookie(c: Context, state: AuthServices, session: Session): void {
  setCookie(c, SESSION_COOKIE, session.id, {
    path: '/',
    httpOnly: true,
    sameSite: 'Strict',
    secure: state.https,
    maxAge: Math.max(1, Math.round((session.expires - Date.now()) / 1000)),
  });
}

/** The request's session, or a new anonymous one (for the login and setup forms) */
function currentOrAnonymous(c: Context, state: AuthServices): Session {
  const existing = state.sessions.get(getCookie(c, SESSION_COOKIE));
  if (existing) return existing;
  const session = state.sessions.anonymous();
  setSessionCookie(c, state, session);
  return session;
}

async function formField(c: Context, name: string): Promise<string> {
  const type = c.req.header('content-type') ?? '';
  if (
    !type.startsWith('application/x-www-form-urlencoded') &&
    !type.startsWith('multipart/form-data')
  )
    return '';
  const value = (await formBody(c))[name];
  return typeof value === 'string' ? value : '';
}

async function csrfValid(c: Context, session: Session): Promise<boolean> {
  const sent = c.req.header('x-csrf-token') ?? (await formField(c, '_csrf'));
  return sent !== '' && sameSecret(sent, session.csrf);
}

/** A refusal: the page (or JSON, for scripts) and the Retry-After header say how long to wait */
type Refuse = (error: string, status: 429) => Response | Promise<Response>;

/**
 * Waits the client's turn to have a password checked; or, when that turn is
 * too far away, answers 429 at once with how long to wait
 */
async function loginTurn(
  c: Context,
  state: AuthServices,
  refuse: Refuse,
): Promise<{ attempt: LoginAttempt } | { refused: Response }> {
  const client = clientOf(c);
  const turn = await state.throttle.take(client);
  if (!turn.allowed) {
    const seconds = Math.max(1, Math.ceil(turn.retryAfterMs / 1000));
    state.log.warn(
      { client, retryAfterSeconds: seconds },
      'Web login refused unchecked: too many attempts',
    );
    c.header('Retry-After', String(seconds));
    const text = `Too many login attempts: wait ${seconds} seconds, then try again`;
    const json = (c.req.header('accept') ?? '').includes('application/json');
    return {
      refused: json
        ? c.json({ error: text, retryAfterSeconds: seconds }, 429)
        : await refuse(text, 429),
    };
  }
  return { attempt: turn.attempt };
}

const sessionTtl = (state: AuthServices): number =>
  parseDuration(state.store.config.web.sessionTtl) ?? DEFAULT_TTL_MS;

export function authRoutes(app: WebApp, state: AuthServices): void {
  const frame = () => ({ hostname: state.store.config.hostname, version: VERSION });

  app.get('/setup', async (c) => {
    if (await state.credentials.isSet()) return c.redirect('/login', 303);
    return c.html(
      setupPage({
        ...frame(),
        csrf: currentOrAnonymous(c, state).csrf,
        tokenFile: state.setup.file,
      }),
    );
  });

  app.post('/setup', async (c) => {
    if (await state.credentials.isSet()) return c.redirect('/login', 303);
    const session = currentOrAnonymous(c, state);
    const show = (error: string, status: 400 | 401 | 403 | 429) =>
      c.html(
        setupPage({ ...frame(), csrf: session.csrf, tokenFile: state.setup.file, error }),
        status,
      );
    if (!(await csrfValid(c, session))) return show('The form expired; please try again', 403);
    const turn = await loginTurn(c, state, show);
    if ('refused' in turn) return turn.refused;
    const body = await formBody(c).catch((err: unknown) => {
      turn.attempt.failed();
      throw err;
    });
    const [token, password, confirm] = ['token', 'password', 'confirm'].map((key) =>
      String(body[key] ?? ''),
    );
    if (!state.setup.matches(token ?? '')) {
      turn.attempt.failed();
      return show(
        'That setup token is not right. Copy it from the log or the setup-token file',
        401,
      );
    }
    // The token was right: a password the form refuses is no guess
    turn.attempt.succeeded();
    if (password !== confirm) return show('The two passwords differ', 400);
    try {
      await state.credentials.set(password ?? '');
    } catch (err) {
      if (err instanceof UsageError) return show(err.message, 400);
      throw err;
    }
    await state.setup.retire();
    state.sessions.endAll();
    const authenticated = state.sessions.authenticate(undefined, sessionTtl(state));
    authenticated.flash = {
      kind: 'ok',
      text: 'Admin password set. Next step: enter your upstream under Settings, then send a test mail',
    };
    setSessionCookie(c, state, authenticated);
    state.log.info('Admin password set through the web page');
    return c.redirect('/', 303);
  });

  app.get('/login', async (c) => {
    if (!(await state.credentials.isSet())) return c.redirect('/setup', 303);
    const session = currentOrAnonymous(c, state);
    if (session.authenticated) return c.redirect('/', 303);
    return c.html(loginPage({ ...frame(), csrf: session.csrf }));
  });

  app.post('/login', async (c) => {
    const session = currentOrAnonymous(c, state);
    const show = (error: string, status: 401 | 403 | 429) =>
      c.html(loginPage({ ...frame(), csrf: session.csrf, error }), status);
    if (!(await csrfValid(c, session))) return show('The form expired; please try again', 403);
    const turn = await loginTurn(c, state, show);
    if ('refused' in turn) return turn.refused;
    let right = false;
    try {
      right = await state.credentials.verify(await formField(c, 'password'));
    } finally {
      if (right) turn.attempt.succeeded();
      else turn.attempt.failed();
    }
    if (!right) {
      state.log.warn({ client: clientOf(c) }, 'Wrong admin password on the web page');
      return show('Wrong password', 401);
    }
    setSessionCookie(c, state, state.sessions.authenticate(session, sessionTtl(state)));
    return c.redirect('/', 303);
  });
}

/** The gate: sets `principal`, or answers 401 / redirects to login or setup */
export function requireLogin(state: AuthServices): MiddlewareHandler {
  return async (c, next) => {
    const bearer = /^Bearer (\S+)$/.exec(c.req.header('authorization') ?? '')?.[1];
    if (bearer && wantsJson(c.req.path)) {
      const token = await state.tokens.verify(bearer);
      if (!token) return c.json({ error: 'Invalid API token' }, 401);
      const needed = scopeNeeded(c.req.method, c.req.path);
      if (!scopeCovers(token.scope, needed)) {
        const error = `This API token has scope "${token.scope}"; ${c.req.method} ${c.req.path} needs a token with scope "${needed}"${needed === 'admin' ? '' : ' or "admin"'}`;
        return c.json({ error }, 403);
      }
      c.set('principal', { kind: 'token', token });
      return next();
    }
    const session = state.sessions.get(getCookie(c, SESSION_COOKIE));
    if (!session?.authenticated) {
      if (wantsJson(c.req.path))
        return c.json({ error: 'Log in or send "Authorization: Bearer <API token>"' }, 401);
      return c.redirect((await state.credentials.isSet()) ? '/login' : '/setup', 303);
    }
    if (!SAFE_METHODS.has(c.req.method) && !(await csrfValid(c, session))) {
      if (wantsJson(c.req.path))
        return c.json({ error: `${CSRF_REFUSED}: send the session's token in X-CSRF-Token` }, 403);
      // A person clicked a stale or forged form: a page, not JSON
      return c.html(
        problemPage({
          hostname: state.store.config.hostname,
          version: VERSION,
          title: 'Form expired',
          text: `${CSRF_REFUSED}: go back, reload the page and try again`,
        }),
        403,
      );
    }
    c.set('principal', { kind: 'session', session });
    return next();
  };
}

export function logoutRoute(app: WebApp, state: AuthServices): void {
  app.post('/logout', (c) => {
    const principal = c.get('principal');
    if (principal.kind === 'session') state.sessions.end(principal.session);
    deleteCookie(c, SESSION_COOKIE, { path: '/', secure: state.https });
    return c.redirect('/login', 303);
  });
}
