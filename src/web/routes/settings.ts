/** The settings page and /api/settings: read (never a secret), validate, save, apply, say when a restart is needed */
import type { Config } from '../../config/schema.js';
import { isPlainObject, valueAt, type JsonObject } from '../../config/merge.js';
import { forgetMovedSecrets, type ForgottenSecret } from '../../config/secrets.js';
import { formBody } from '../body.js';
import type { WebApp, WebContext, WebServices } from '../context.js';
import { ConfigChangedError } from '../../config/store.js';
import { ConfigError } from '../../errors.js';
import {
  REVISION_FIELD,
  withProviderPacing,
  formPatch,
  formValues,
  postedForm,
  secretStates,
  validatePatch,
  type FieldErrors,
  type FormValues,
} from '../settings-form.js';
import { settingsView } from '../views/settings.js';
import { redirectWith, render } from './render.js';

/** What these routes use of the relay */
export type SettingsServices = Pick<WebServices, 'store' | 'log'>;

/**
 * A key whose name ends like this holds a secret (smarthost.password,
 * oauth2.clientSecret, and any added later under such a name): the API shows
 * only whether one is set, as `<key>Set`.
 */
const SECRET_KEY = /(password|secret|token)$/i;

function redact(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(redact);
  if (!isPlainObject(node)) return node;
  const out: JsonObject = {};
  for (const [key, value] of Object.entries(node)) {
    if (SECRET_KEY.test(key) && typeof value === 'string') out[`${key}Set`] = value !== '';
    else out[key] = redact(value);
  }
  return out;
}

/** The config as the API shows it: every secret replaced by whether one is set */
export const redactedConfig = (config: Config): JsonObject => redact(config) as JsonObject;

/** Read once when the listeners start: changing them takes a restart */
const LISTENER_KEYS = [
  ['smtp', 'host'],
  ['smtp', 'port'],
  ['smtp', 'tls'],
  ['pop3', 'host'],
  ['pop3', 'port'],
  ['pop3', 'tls'],
  ['web', 'host'],
  ['web', 'port'],
  ['web', 'tls'],
  ['dataDir'],
] as const;

/** The listener keys whose value differs from what the running listeners were started with */
function restartKeys(running: Config, current: Config): string[] {
  return LISTENER_KEYS.filter(
    (key) => JSON.stringify(valueAt(running, key)) !== JSON.stringify(valueAt(current, key)),
  ).map((key) => key.join('.'));
}

export function settingsRoutes(app: WebApp, state: SettingsServices): void {
  // The routes are set up once the listeners run: this is the config they run with
  const running = state.store.config;
  const pending = () => restartKeys(running, state.store.config);

  const show = (
    c: WebContext,
    values: FormValues,
    errors: FieldErrors,
    other: string[],
    status?: 409,
  ) => {
    const config = state.store.config;
    const model = {
      values,
      errors,
      other,
      persistent: state.store.persistent,
      source: state.store.source,
      secrets: secretStates(config),
      ports: { smtp: config.smtp.port, pop3: config.pop3.port, web: config.web.port },
      restartKeys: pending(),
      revision: state.store.revision,
    };
    return render(
      c,
      state,
      'settings',
      'Settings',
      (csrf) => settingsView(model, csrf),
      status ?? (Object.keys(errors).length || other.length ? 400 : 200),
    );
  };

  /** A change that points a stored secret at another server forgets it (unless it gives it again); the rest is validated as a whole */
  const save = async (
    requested: JsonObject,
    basedOn?: string,
  ): Promise<
    { problems: { errors: FieldErrors; other: string[] } } | { forgotten: ForgottenSecret[] }
  > => {
    const { patch, forgotten } = forgetMovedSecrets(
      state.store.config,
      withProviderPacing(state.store.config, requested),
    );
    const problems = validatePatch(state.store.config, patch);
    if (Object.keys(problems.errors).length || problems.other.length) return { problems };
    await state.store.update(patch, basedOn);
    state.log.info(
      { keys: Object.keys(patch), forgotten: forgotten.map((secret) => secret.key) },
      'Settings changed on the web page',
    );
    return { forgotten };
  };

  const savedText = (forgotten: ForgottenSecret[]) => {
    const restart = pending();
    const saved = restart.length
      ? `Settings saved. Restart needed: the relay still listens with the old ${restart.join(', ')}`
      : state.store.persistent
        ? 'Settings saved and in use'
        : 'Settings in use until the relay restarts (no config file)';
    const removed = forgotten
      .map(
        (secret) =>
          `. The stored ${secret.label} was removed because it belongs to the server it was given for: enter it again to use it with the new one`,
      )
      .join('');
    return saved + removed;
  };

  app.get('/settings', (c) => show(c, formValues(state.store.config), {}, []));

  app.post('/settings', async (c) => {
    const body = await formBody(c);
    const form = postedForm(body);
    const revision = body[REVISION_FIELD];
    let result;
    try {
      result = await save(formPatch(form), typeof revision === 'string' ? revision : undefined);
    } catch (err) {
      // Changed or broken under the page: show the file as it is now, with why nothing was saved
      if (err instanceof ConfigChangedError || err instanceof ConfigError)
        return show(c, formValues(state.store.config), {}, [err.message], 409);
      throw err;
    }
    if ('problems' in result)
      return show(
        c,
        {
          ...formValues(state.store.config),
          ...form,
          password: '',
          oauthClientSecret: '',
          graphClientSecret: '',
        },
        result.problems.errors,
        result.problems.other,
      );
    return redirectWith(c, '/settings', { kind: 'ok', text: savedText(result.forgotten) });
  });

  const current = () => ({
    persistent: state.store.persistent,
    restartNeeded: pending().length > 0,
    restartKeys: pending(),
    config: redactedConfig(state.store.config),
  });

  app.get('/api/settings', (c) => c.json(current()));

  /** Body: a partial config, e.g. {"delivery": {"smarthost": {"host": "smtp.example.com"}}} */
  app.patch('/api/settings', async (c) => {
    const patch: unknown = await c.req.json().catch(() => undefined);
    if (!isPlainObject(patch))
      return c.json({ error: 'Send a JSON object with the keys to change' }, 400);
    let result;
    try {
      result = await save(patch);
    } catch (err) {
      if (err instanceof ConfigError) return c.json({ error: err.message }, 409);
      throw err;
    }
    if ('problems' in result)
      return c.json(
        { error: 'Invalid settings', fields: result.problems.errors, other: result.problems.other },
        400,
      );
    return c.json({ ...current(), forgottenSecrets: result.forgotten.map((secret) => secret.key) });
  });
}
