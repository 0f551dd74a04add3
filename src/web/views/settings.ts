/** The settings form: upstream (smarthost or Microsoft Graph) and its sign-in, sender alignment, DKIM, who may send, device TLS, limits, retries, alerts */
import { html } from 'hono/html';
import { CHECKBOXES_FIELD, FIELDS, REVISION_FIELD } from '../settings-form.js';
import { csrfField, pathCode, type Html } from './layout.js';
import { checkbox, row, select, text, textarea, type SettingsModel } from './settings-controls.js';
import { graph, oauth, upstream } from './settings-upstream.js';

function persistenceNotice(m: SettingsModel): Html {
  if (m.persistent)
    return html`<p class="lead">Saved to ${pathCode(m.source)} and used at once: the next message already follows them.</p>`;
  return html`<div class="notice warn"><strong>Changes last only until the relay restarts.</strong> It was started without a config file.
To keep settings, create a file containing <code>{}</code> (for example <code>/etc/edge-relay/config.json</code>) and start the relay with
<code>edge-relay serve --config /etc/edge-relay/config.json</code>; this page then saves into that file.</div>`;
}

function restartNotice(m: SettingsModel): Html {
  if (m.restartKeys.length === 0) return html``;
  return html`<div class="notice warn" id="restart-needed"><strong>Restart needed.</strong> These settings changed but the relay still listens with the old ones until it restarts
(<code>systemctl restart edge-relay</code>): ${m.restartKeys.map((k, i) => html`${i ? ', ' : ''}<code>${k}</code>`)}.</div>`;
}

function alignment(m: SettingsModel): Html {
  return html`<fieldset id="rewrite"><legend>Sender alignment (off by default)</legend>
<div class="hint" id="why-rewrite"><p><strong>Why turn it on?</strong> Receivers check that a message's From address belongs to a domain that allows
the sending server (SPF) or signed it (DKIM); a domain with a DMARC policy asks them to refuse or spam-folder mail that fails. Devices often send as
<code>scanner@printer.local</code>, or as a person's address the upstream may not send for: such mail is refused (for example
<code>550 5.7.1</code> or <code>554 5.7.5</code>) or lands in spam. Microsoft 365 and Google also refuse a From the signed-in mailbox may not use.</p>
<p>With an address below, every message leaves with that verified sender. The device's own address goes to <code>Reply-To</code> (unless there is one),
so replies still reach the right person, and the original From is kept in <code>X-Original-From</code>. Leave both empty to keep it off.
Per-device addresses (<code>smtp.devices</code>) and per-domain ones (<code>delivery.domains</code>) are set in the config file.</p></div>
${row(m, 'rewriteHeaderFrom', 'From address', 'the verified address people see, e.g. scanner@contoso.com', text(m, 'rewriteHeaderFrom', 'text', 'scanner@contoso.com'))}
${row(m, 'rewriteEnvelopeFrom', 'Envelope sender', 'where bounces go (MAIL FROM); usually the same address', text(m, 'rewriteEnvelopeFrom', 'text', 'scanner@contoso.com'))}
${row(m, 'rewriteUseDeviceName', 'Display name', '', checkbox(m, 'rewriteUseDeviceName', 'Show the device\'s name from the Devices page, e.g. "3rd floor MFP" <scanner@contoso.com>'))}
</fieldset>
<fieldset id="dkim"><legend>DKIM signing</legend>
<p class="hint">Signs relayed mail with a key made on this box; the <a href="/sender">Sender</a> page then shows the DNS record to publish.</p>
${row(m, 'dkimEnabled', 'Signing', '', checkbox(m, 'dkimEnabled', 'Sign outgoing mail'))}
${row(m, 'dkimDomain', 'Signing domain', 'usually the domain of the From address', text(m, 'dkimDomain', 'text', 'contoso.com'))}
${row(m, 'dkimSelector', 'Selector', 'the name of the key in DNS', text(m, 'dkimSelector'))}
</fieldset>`;
}

function devices(m: SettingsModel): Html {
  return html`<fieldset><legend>Devices and mailboxes</legend>
${row(m, 'allowNetworks', 'Networks allowed to send', 'one per line, e.g. 192.168.1.0/24; only your own networks: the whole internet (0.0.0.0/0, ::/0) and public ranges wider than /16 are refused', textarea(m, 'allowNetworks'))}
${row(m, 'localDomains', 'Local domains', 'mail to these goes to mailboxes on this box; one per line', textarea(m, 'localDomains'))}
${row(m, 'maxMessageSize', 'Largest message', 'in MB', text(m, 'maxMessageSize', 'number'))}
</fieldset>
<fieldset id="intake-tls"><legend>Encryption for devices (needs a restart)</legend>
<p class="hint">Off by default: many old printers stop sending when the server offers STARTTLS. Turn it on only for devices that want it; a device that
connects and then goes silent after STARTTLS needs the <em>legacy</em> profile (see its transcript on the Devices page).</p>
${row(m, 'tlsStarttls', 'STARTTLS', '', checkbox(m, 'tlsStarttls', 'Offer STARTTLS on the SMTP port'))}
${row(m, 'tlsPort', 'Implicit-TLS port', 'e.g. 465; 0 = off', text(m, 'tlsPort', 'number'))}
${row(
  m,
  'tlsProfile',
  'Profile',
  '',
  select(m, 'tlsProfile', [
    ['modern', 'Modern (TLS 1.2 and newer)'],
    ['legacy', 'Legacy (also TLS 1.0/1.1 and old ciphers, for old devices)'],
  ]),
)}
</fieldset>`;
}

function retriesAndAlerts(m: SettingsModel): Html {
  return html`<fieldset><legend>Retries</legend>
${row(m, 'retryDelays', 'Waits between attempts', 'e.g. 1m, 5m, 15m, 1h (the last one repeats)', text(m, 'retryDelays'))}
${row(m, 'maxAge', 'Give up after', 'then a bounce report goes to the postmaster mailbox, e.g. 5d', text(m, 'maxAge'))}
</fieldset>
<fieldset><legend>Alerts</legend>
${row(m, 'upstreamFailingFor', 'Alert when the upstream has failed for', 'e.g. 15m', text(m, 'upstreamFailingFor'))}
${row(m, 'queueThreshold', 'Alert when the queue holds more than', 'messages; 0 = never', text(m, 'queueThreshold', 'number'))}
${row(m, 'dailyCapPercent', 'Alert at this share of the daily limit', '% of Recipients a day; 0 = never', text(m, 'dailyCapPercent', 'number'))}
${row(m, 'webhook', 'Webhook URL', 'optional: alerts are also POSTed here as JSON (ntfy, Apprise, Teams)', text(m, 'webhook'))}
${row(m, 'digestTo', 'Daily summary to', 'optional: an address or a mailbox name', text(m, 'digestTo'))}
</fieldset>`;
}

const CHECKBOXES = FIELDS.filter((f) => f.kind === 'checkbox')
  .map((f) => f.name)
  .join(',');

export function settingsView(m: SettingsModel, csrf: string): Html {
  const failed = Object.keys(m.errors).length > 0 || m.other.length > 0;
  return html`<h1>Settings</h1>${failed ? '' : persistenceNotice(m)}${restartNotice(m)}
${m.other.length ? html`<div class="notice error">${m.other.map((o) => html`<div>${o}</div>`)}</div>` : ''}
${Object.keys(m.errors).length ? html`<div class="notice error" role="alert">Nothing was saved: please fix the fields marked below.</div>` : ''}
<form method="post" action="/settings" class="stack">${csrfField(csrf)}<input type="hidden" name="${CHECKBOXES_FIELD}" value="${CHECKBOXES}">
<input type="hidden" name="${REVISION_FIELD}" value="${m.revision}">
${upstream(m)}${graph(m)}${oauth(m)}${alignment(m)}${devices(m)}${retriesAndAlerts(m)}
<div class="actions"><button type="submit" class="primary">Save settings</button></div></form>
<p class="muted small">Listening ports (SMTP ${m.ports.smtp}, POP3 ${m.ports.pop3}, web ${m.ports.web}) are set in the config file and need a restart to change.</p>`;
}
