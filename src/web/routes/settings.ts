/** The settings page and /api/settings: read (never the password), validate, save, apply */
import type { Config } from '../../config/schema.js';
import { isPlainObject, type JsonObject } from '../../config/merge.js';
import { formBody } from '../body.js';
import type { WebApp, WebContext, WebState } from '../context.js';
import { FIELDS, formPatch, formValues, validatePatch, type FieldErrors, type FormValues } from '../settings-form.js';
import { settingsView } from '../views/settings.js';
import { redirectWith, render } from './render.js';

/** The config as the API shows it: the upstream password replaced by whether one is set */
export function redactedConfig(config: Config): JsonObject {
  const { password, ...smarthost } = config.delivery.smarthost;
  return { ...config, delivery: { ...config.delivery, smarthost: { ...smarthost, passwordSet: password !== '' } } };
}

export function settingsRoutes(app: WebApp, state: WebState): void {
  const show = (c: WebContext, values: FormValues, errors: FieldErrors, other: string[]) => {
    const config = state.store.config;
    const model = {
      values,
      errors,
      other,
      persistent: state.store.persistent,
      source: state.store.source,
      passwordSet: config.delivery.smarthost.password !== '',
      ports: { smtp: config.smtp.port, pop3: config.pop3.port, web: config.web.port },
    };
    return render(c, state, 'settings', 'Settings', (csrf) => settingsView(model, csrf), Object.keys(errors).length || other.length ? 400 : 200);
  };

  const save = async (patch: JsonObject) => {
    const problems = validatePatch(state.store.config, patch);
    if (Object.keys(problems.errors).length || problems.other.length) return problems;
    await state.store.update(patch);
    state.log.info({ keys: Object.keys(patch) }, 'Settings changed on the web page');
    return undefined;
  };

  app.get('/settings', (c) => show(c, formValues(state.store.config), {}, []));

  app.post('/settings', async (c) => {
    const body = await formBody(c);
    const form: FormValues = {};
    for (const name of [...FIELDS.map((f) => f.name), 'clearPassword']) form[name] = typeof body[name] === 'string' ? body[name] : '';
    const problems = await save(formPatch(form));
    if (problems) return show(c, { ...form, password: '' }, problems.errors, problems.other);
    return redirectWith(c, '/settings', { kind: 'ok', text: state.store.persistent ? 'Settings saved and in use' : 'Settings in use until the relay restarts (no config file)' });
  });

  app.get('/api/settings', (c) => c.json({ persistent: state.store.persistent, config: redactedConfig(state.store.config) }));

  /** Body: a partial config, e.g. {"delivery": {"smarthost": {"host": "smtp.example.com"}}} */
  app.patch('/api/settings', async (c) => {
    const patch: unknown = await c.req.json().catch(() => undefined);
    if (!isPlainObject(patch)) return c.json({ error: 'Send a JSON object with the keys to change' }, 400);
    const problems = await save(patch);
    if (problems) return c.json({ error: 'Invalid settings', fields: problems.errors, other: problems.other }, 400);
    return c.json({ persistent: state.store.persistent, config: redactedConfig(state.store.config) });
  });
}
