/** The settings form's controls: each field with its label, hint and the error the last save found for it */
import { html } from 'hono/html';
import type { FieldErrors, FormValues } from '../settings-form.js';
import type { Html } from './layout.js';

export interface SettingsModel {
  values: FormValues;
  errors: FieldErrors;
  other: string[];
  persistent: boolean;
  source: string;
  /** Whether each write-only field has a stored value */
  secrets: Record<string, { clear: string; stored: boolean }>;
  ports: { smtp: number; pop3: number; web: number };
  /** Listener settings changed since the start: they apply after a restart */
  restartKeys: string[];
  /** The config file as this page shows it: a save from an older view is refused */
  revision: string;
}

export function row(
  m: SettingsModel,
  name: string,
  label: string,
  hint: string,
  input: Html,
): Html {
  const error = m.errors[name];
  return html`<div class="${error ? 'has-error' : ''}"><label for="${name}">${label} ${hint ? html`<span class="hint">${hint}</span>` : ''}</label>${input}
${error ? html`<div class="field-error" id="${name}-error">${error}</div>` : ''}</div>`;
}

export const text = (m: SettingsModel, name: string, type = 'text', placeholder = ''): Html =>
  html`<input type="${type}" id="${name}" name="${name}" value="${m.values[name] ?? ''}" placeholder="${placeholder}">`;

export function select(m: SettingsModel, name: string, options: [string, string][]): Html {
  return html`<select id="${name}" name="${name}">${options.map(([value, label]) => html`<option value="${value}" ${m.values[name] === value ? 'selected' : ''}>${label}</option>`)}</select>`;
}

export const textarea = (m: SettingsModel, name: string): Html =>
  html`<textarea id="${name}" name="${name}">${m.values[name] ?? ''}</textarea>`;

export const checkbox = (m: SettingsModel, name: string, label: string): Html =>
  html`<label class="hint"><input type="checkbox" id="${name}" name="${name}" ${m.values[name] === 'on' ? 'checked' : ''}> ${label}</label>`;

/** Write-only: the page never holds the stored value, only whether there is one */
export function secret(m: SettingsModel, name: string, label: string): Html {
  const { clear, stored: set } = m.secrets[name] ?? { clear: '', stored: false };
  return html`${row(m, name, label, set ? 'one is stored; leave empty to keep it' : 'none stored', html`<input type="password" id="${name}" name="${name}" value="" autocomplete="new-password">`)}
${set ? html`<label class="hint"><input type="checkbox" name="${clear}"> Remove the stored ${label.toLowerCase()}</label>` : ''}`;
}
