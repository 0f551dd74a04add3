/** The settings form: upstream (smarthost or Microsoft Graph) and its sign-in, sender alignment, DKIM, who may send, device TLS, limits, retries, alerts */
import { html } from 'hono/html';
import { PROVIDER_PACING, PROVIDER_SMARTHOST } from '../../oauth/providers.js';
import { CHECKBOXES_FIELD, FIELDS, REVISION_FIELD } from '../settings-form.js';
import { csrfField, pathCode, type Html } from './layout.js';
import { checkbox, row, secret, select, text, textarea, type SettingsModel } from './settings-controls.js';

function persistenceNotice(m: SettingsModel): Html {
  if (m.persistent) return html`<p class="lead">Saved to ${pathCode(m.source)} and used at once: the next message already follows them.</p>`;
  return html`<div class="notice warn"><strong>Changes last only until the relay restarts.</strong> It was started without a config file.
To keep settings, create a file containing <code>{}</code> (for example <code>/etc/edge-relay/config.json</code>) and start the relay with
<code>edge-relay serve --config /etc/edge-relay/config.json</code>; this page then saves into that file.</div>`;
}

function restartNotice(m: SettingsModel): Html {
  if (m.restartKeys.length === 0) return html``;
  return html`<div class="notice warn" id="restart-needed"><strong>Restart needed.</strong> These settings changed but the relay still listens with the old ones until it restarts
(<code>systemctl restart edge-relay</code>): ${m.restartKeys.map((k, i) => html`${i ? ', ' : ''}<code>${k}</code>`)}.</div>`;
}

const PACING_HINT = `Filled in when you choose Microsoft 365 (${PROVIDER_PACING[PROVIDER_SMARTHOST.microsoft.host]?.messagesPerMinute} a minute, ${PROVIDER_PACING[PROVIDER_SMARTHOST.microsoft.host]?.recipientsPerDay.toLocaleString('en')} a day) or Gmail (${PROVIDER_PACING[PROVIDER_SMARTHOST.google.host]?.recipientsPerDay.toLocaleString('en')} a day) while both are 0`;

const PROVIDER_HINT = `Microsoft 365: ${PROVIDER_SMARTHOST.microsoft.host} port ${PROVIDER_SMARTHOST.microsoft.port}; Google: ${PROVIDER_SMARTHOST.google.host} port ${PROVIDER_SMARTHOST.google.port}`;

function upstream(m: SettingsModel): Html {
  return html`<fieldset><legend>Upstream: where mail goes out</legend>
${row(m, 'mode', 'Delivery', '', select(m, 'mode', [['smarthost', "Through my provider's SMTP server (smarthost)"], ['graph', 'Microsoft 365 through Microsoft Graph (no SMTP AUTH needed)'], ['mx', "Directly to each recipient's mail server (MX)"]]))}
${row(m, 'host', 'SMTP server', `${PROVIDER_HINT}. A new server or port removes the stored password: type it again`, text(m, 'host'))}
${row(m, 'port', 'Port', '587 for STARTTLS, 465 for TLS', text(m, 'port', 'number'))}
${row(m, 'security', 'Encryption', 'a user name and password are only ever sent encrypted', select(m, 'security', [['starttls', 'STARTTLS (required)'], ['tls', 'TLS from the start (port 465)'], ['none', 'None (only for a server on this LAN)']]))}
${row(m, 'auth', 'Authentication', 'OAuth2 for Microsoft 365 and Google, which are retiring passwords for SMTP', select(m, 'auth', [['password', 'User name and password'], ['oauth2', 'OAuth2 (sign in with Microsoft, Google or another provider)']]))}
${row(m, 'user', 'User name', 'the mailbox to send as, e.g. scanner@contoso.com; empty if the server needs no login', text(m, 'user'))}
${secret(m, 'password', 'Password')}
${row(m, 'verify', 'Certificate check', '', checkbox(m, 'verify', "Verify the server's certificate (keep this on)"))}
${row(m, 'pacingPerMinute', 'Messages a minute', `the provider's limit for the smarthost or Graph; 0 = no limit. ${PACING_HINT}`, text(m, 'pacingPerMinute', 'number'))}
${row(m, 'pacingPerDay', 'Recipients a day', 'in the last 24 hours; 0 = no limit. Mail over either limit waits in the queue instead of being refused, and a provider never blocks the account', text(m, 'pacingPerDay', 'number'))}
</fieldset>`;
}

function oauth(m: SettingsModel): Html {
  return html`<fieldset id="oauth"><legend>Upstream sign-in (OAuth2)</legend>
<p class="hint">Used when Authentication is OAuth2. Register an app with your provider (step by step in the docs: docs/upstreams.md, "Microsoft 365" or "Google Workspace"), fill in its IDs here, save, then open the
<a href="/sender">Sender</a> page and press <em>Sign in (device code)</em>. App-only sign-in (Microsoft 365 client credentials) needs no sign-in there.</p>
${row(m, 'oauthProvider', 'Provider', '', select(m, 'oauthProvider', [['microsoft', 'Microsoft 365'], ['google', 'Google Workspace / Gmail'], ['generic', 'Other (token URL and scope in the config file)']]))}
${row(m, 'oauthFlow', 'Sign-in', '', select(m, 'oauthFlow', [['device', 'An admin signs in once (device code)'], ['client_credentials', 'App-only with a client secret (Microsoft 365 only)']]))}
${row(m, 'oauthTenant', 'Tenant', 'Microsoft: your tenant ID or domain (required for app-only)', text(m, 'oauthTenant', 'text', 'contoso.onmicrosoft.com'))}
${row(m, 'oauthClientId', 'Client ID', 'the application (client) ID of the app you registered', text(m, 'oauthClientId'))}
${secret(m, 'oauthClientSecret', 'Client secret')}
</fieldset>`;
}

function graph(m: SettingsModel): Html {
  return html`<fieldset id="graph"><legend>Microsoft Graph (when Delivery is Microsoft 365 through Microsoft Graph)</legend>
<div class="hint" id="graph-steps"><p>For tenants where SMTP AUTH is off (Security Defaults, or turned off for the whole tenant). Mail leaves as the
device wrote it, sent by a mailbox of yours. Register the relay once in the Microsoft Entra admin center:</p>
<ol><li><strong>App registrations &gt; New registration</strong>: any name (e.g. <em>edge-relay</em>), "Accounts in this organizational directory only", no redirect URI.
Copy the <em>Application (client) ID</em> and the <em>Directory (tenant) ID</em> into the fields below.</li>
<li><strong>Certificates &amp; secrets &gt; New client secret</strong>: copy its <em>Value</em> (shown once) into Client secret. Note when it expires: mail stops then, and the dashboard says so.</li>
<li><strong>API permissions &gt; Add a permission &gt; Microsoft Graph &gt; Application permissions</strong>: <code>Mail.Send</code>; add <code>Mail.ReadWrite</code> too if
devices send messages over 3 MB (large scans go as a draft with the attachment uploaded).</li>
<li><strong>Grant admin consent</strong> for your organization (the button on the same page).</li>
<li>Optional, recommended: limit the app to the sending mailbox with an application access policy (Exchange Online PowerShell:
<code>New-ApplicationAccessPolicy -AppId &lt;client ID&gt; -PolicyScopeGroupId scanners@contoso.com -AccessRight RestrictAccess</code>); otherwise it may send as any mailbox.</li></ol>
<p>Then save and send a test mail: Graph's own answer is shown.</p></div>
${row(m, 'graphTenant', 'Tenant', 'the directory (tenant) ID or your domain', text(m, 'graphTenant', 'text', 'contoso.onmicrosoft.com'))}
${row(m, 'graphClientId', 'Client ID', 'the application (client) ID', text(m, 'graphClientId'))}
${secret(m, 'graphClientSecret', 'Graph client secret')}
${row(m, 'graphSender', 'Send from', '', select(m, 'graphSender', [['from', 'The mailbox of the From address (after sender alignment)'], ['mailbox', 'Always the mailbox below']]))}
${row(m, 'graphMailbox', 'Mailbox', 'for "Always the mailbox below", e.g. scanner@contoso.com; it must be a mailbox (a shared mailbox works, no licence needed)', text(m, 'graphMailbox', 'text', 'scanner@contoso.com'))}
</fieldset>`;
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
${row(m, 'tlsProfile', 'Profile', '', select(m, 'tlsProfile', [['modern', 'Modern (TLS 1.2 and newer)'], ['legacy', 'Legacy (also TLS 1.0/1.1 and old ciphers, for old devices)']]))}
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

const CHECKBOXES = FIELDS.filter((f) => f.kind === 'checkbox').map((f) => f.name).join(',');

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
