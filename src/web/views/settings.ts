/** The settings form: upstream, who may send, local domains, limits, retries, alerts */
import { html } from 'hono/html';
import type { FieldErrors, FormValues } from '../settings-form.js';
import { csrfField, type Html } from './layout.js';

export interface SettingsModel {
  values: FormValues;
  errors: FieldErrors;
  other: string[];
  persistent: boolean;
  source: string;
  passwordSet: boolean;
  ports: { smtp: number; pop3: number; web: number };
}

function row(m: SettingsModel, name: string, label: string, hint: string, input: Html): Html {
  const error = m.errors[name];
  return html`<div class="${error ? 'has-error' : ''}"><label for="${name}">${label} ${hint ? html`<span class="hint">${hint}</span>` : ''}</label>${input}
${error ? html`<div class="field-error" id="${name}-error">${error}</div>` : ''}</div>`;
}

const text = (m: SettingsModel, name: string, type = 'text'): Html => html`<input type="${type}" id="${name}" name="${name}" value="${m.values[name] ?? ''}">`;

function select(m: SettingsModel, name: string, options: [string, string][]): Html {
  return html`<select id="${name}" name="${name}">${options.map(([value, label]) => html`<option value="${value}" ${m.values[name] === value ? 'selected' : ''}>${label}</option>`)}</select>`;
}

const textarea = (m: SettingsModel, name: string): Html => html`<textarea id="${name}" name="${name}">${m.values[name] ?? ''}</textarea>`;

function persistenceNotice(m: SettingsModel): Html {
  if (m.persistent) return html`<p class="lead">Saved to <code>${m.source}</code> and used at once: the next message already follows them.</p>`;
  return html`<div class="notice warn"><strong>Changes last only until the relay restarts.</strong> It was started without a config file.
To keep settings, create a file containing <code>{}</code> (for example <code>/etc/edge-relay/config.json</code>) and start the relay with
<code>edge-relay serve --config /etc/edge-relay/config.json</code>; this page then saves into that file.</div>`;
}

export function settingsView(m: SettingsModel, csrf: string): Html {
  return html`<h1>Settings</h1>${persistenceNotice(m)}
${m.other.length ? html`<div class="notice error">${m.other.map((o) => html`<div>${o}</div>`)}</div>` : ''}
${Object.keys(m.errors).length ? html`<div class="notice error" role="alert">Nothing was saved: please fix the fields marked below.</div>` : ''}
<form method="post" action="/settings" class="stack">${csrfField(csrf)}
<fieldset><legend>Upstream: where mail goes out</legend>
${row(m, 'mode', 'Delivery', '', select(m, 'mode', [['smarthost', "Through my provider's SMTP server (smarthost)"], ['mx', "Directly to each recipient's mail server (MX)"]]))}
${row(m, 'host', 'SMTP server', 'e.g. smtp.office365.com', text(m, 'host'))}
${row(m, 'port', 'Port', '587 for STARTTLS, 465 for TLS', text(m, 'port', 'number'))}
${row(m, 'security', 'Encryption', '', select(m, 'security', [['starttls', 'STARTTLS (required)'], ['tls', 'TLS from the start (port 465)'], ['none', 'None (only for a server on this LAN)']]))}
${row(m, 'user', 'User name', 'leave empty if the server needs no login', text(m, 'user'))}
${row(m, 'password', 'Password', m.passwordSet ? 'a password is stored; leave empty to keep it' : 'no password stored', html`<input type="password" id="password" name="password" value="" autocomplete="new-password">`)}
${m.passwordSet ? html`<label class="hint"><input type="checkbox" name="clearPassword"> Remove the stored password</label>` : ''}
${row(m, 'verify', 'Certificate check', '', html`<label class="hint"><input type="checkbox" id="verify" name="verify" ${m.values.verify === 'on' ? 'checked' : ''}> Verify the server's certificate (keep this on)</label>`)}
</fieldset>
<fieldset><legend>Devices and mailboxes</legend>
${row(m, 'allowNetworks', 'Networks allowed to send', 'one per line, e.g. 192.168.1.0/24', textarea(m, 'allowNetworks'))}
${row(m, 'localDomains', 'Local domains', 'mail to these goes to mailboxes on this box; one per line', textarea(m, 'localDomains'))}
${row(m, 'maxMessageSize', 'Largest message', 'in MB', text(m, 'maxMessageSize', 'number'))}
</fieldset>
<fieldset><legend>Retries</legend>
${row(m, 'retryDelays', 'Waits between attempts', 'e.g. 1m, 5m, 15m, 1h (the last one repeats)', text(m, 'retryDelays'))}
${row(m, 'maxAge', 'Give up after', 'then a bounce report goes to the postmaster mailbox, e.g. 5d', text(m, 'maxAge'))}
</fieldset>
<fieldset><legend>Alerts</legend>
${row(m, 'upstreamFailingFor', 'Alert when the upstream has failed for', 'e.g. 15m', text(m, 'upstreamFailingFor'))}
${row(m, 'queueThreshold', 'Alert when the queue holds more than', 'messages; 0 = never', text(m, 'queueThreshold', 'number'))}
${row(m, 'webhook', 'Webhook URL', 'optional: alerts are also POSTed here as JSON (ntfy, Apprise, Teams)', text(m, 'webhook'))}
${row(m, 'digestTo', 'Daily summary to', 'optional: an address or a mailbox name', text(m, 'digestTo'))}
</fieldset>
<div class="actions"><button type="submit" class="primary">Save settings</button></div></form>
<p class="muted small">Listening ports (SMTP ${m.ports.smtp}, POP3 ${m.ports.pop3}, web ${m.ports.web}) are set in the config file and need a restart to change.</p>`;
}
