/** The settings form's upstream fieldsets: the smarthost with its pacing, its OAuth2 sign-in, and Microsoft Graph */
import { html } from 'hono/html';
import { PROVIDER_PACING, PROVIDER_SMARTHOST } from '../../oauth/providers.js';
import type { Html } from './layout.js';
import { checkbox, row, secret, select, text, type SettingsModel } from './settings-controls.js';

const PACING_HINT = `Filled in when you choose Microsoft 365 (${PROVIDER_PACING[PROVIDER_SMARTHOST.microsoft.host]?.messagesPerMinute} a minute, ${PROVIDER_PACING[PROVIDER_SMARTHOST.microsoft.host]?.recipientsPerDay.toLocaleString('en')} a day) or Gmail (${PROVIDER_PACING[PROVIDER_SMARTHOST.google.host]?.recipientsPerDay.toLocaleString('en')} a day) while both are 0`;

const PROVIDER_HINT = `Microsoft 365: ${PROVIDER_SMARTHOST.microsoft.host} port ${PROVIDER_SMARTHOST.microsoft.port}; Google: ${PROVIDER_SMARTHOST.google.host} port ${PROVIDER_SMARTHOST.google.port}`;

export function upstream(m: SettingsModel): Html {
  return html`<fieldset><legend>Upstream: where mail goes out</legend>
${row(
  m,
  'mode',
  'Delivery',
  '',
  select(m, 'mode', [
    ['smarthost', "Through my provider's SMTP server (smarthost)"],
    ['graph', 'Microsoft 365 through Microsoft Graph (no SMTP AUTH needed)'],
    ['mx', "Directly to each recipient's mail server (MX)"],
  ]),
)}
${row(m, 'host', 'SMTP server', `${PROVIDER_HINT}. A new server or port removes the stored password: type it again`, text(m, 'host'))}
${row(m, 'port', 'Port', '587 for STARTTLS, 465 for TLS', text(m, 'port', 'number'))}
${row(
  m,
  'security',
  'Encryption',
  'a user name and password are only ever sent encrypted',
  select(m, 'security', [
    ['starttls', 'STARTTLS (required)'],
    ['tls', 'TLS from the start (port 465)'],
    ['none', 'None (only for a server on this LAN)'],
  ]),
)}
${row(
  m,
  'auth',
  'Authentication',
  'OAuth2 for Microsoft 365 and Google, which are retiring passwords for SMTP',
  select(m, 'auth', [
    ['password', 'User name and password'],
    ['oauth2', 'OAuth2 (sign in with Microsoft, Google or another provider)'],
  ]),
)}
${row(m, 'user', 'User name', 'the mailbox to send as, e.g. scanner@contoso.com; empty if the server needs no login', text(m, 'user'))}
${secret(m, 'password', 'Password')}
${row(m, 'verify', 'Certificate check', '', checkbox(m, 'verify', "Verify the server's certificate (keep this on)"))}
${row(m, 'pacingPerMinute', 'Messages a minute', `the provider's limit for the smarthost or Graph; 0 = no limit. ${PACING_HINT}`, text(m, 'pacingPerMinute', 'number'))}
${row(m, 'pacingPerDay', 'Recipients a day', 'in the last 24 hours; 0 = no limit. Mail over either limit waits in the queue instead of being refused, and a provider never blocks the account', text(m, 'pacingPerDay', 'number'))}
</fieldset>`;
}

export function oauth(m: SettingsModel): Html {
  return html`<fieldset id="oauth"><legend>Upstream sign-in (OAuth2)</legend>
<p class="hint">Used when Authentication is OAuth2. Register an app with your provider (step by step in the docs: docs/upstreams.md, "Microsoft 365" or "Google Workspace"), fill in its IDs here, save, then open the
<a href="/sender">Sender</a> page and press <em>Sign in (device code)</em>. App-only sign-in (Microsoft 365 client credentials) needs no sign-in there.</p>
${row(
  m,
  'oauthProvider',
  'Provider',
  '',
  select(m, 'oauthProvider', [
    ['microsoft', 'Microsoft 365'],
    ['google', 'Google Workspace / Gmail'],
    ['generic', 'Other (token URL and scope in the config file)'],
  ]),
)}
${row(
  m,
  'oauthFlow',
  'Sign-in',
  '',
  select(m, 'oauthFlow', [
    ['device', 'An admin signs in once (device code)'],
    ['client_credentials', 'App-only with a client secret (Microsoft 365 only)'],
  ]),
)}
${row(m, 'oauthTenant', 'Tenant', 'Microsoft: your tenant ID or domain (required for app-only)', text(m, 'oauthTenant', 'text', 'contoso.onmicrosoft.com'))}
${row(m, 'oauthClientId', 'Client ID', 'the application (client) ID of the app you registered', text(m, 'oauthClientId'))}
${secret(m, 'oauthClientSecret', 'Client secret')}
</fieldset>`;
}

export function graph(m: SettingsModel): Html {
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
${row(
  m,
  'graphSender',
  'Send from',
  '',
  select(m, 'graphSender', [
    ['from', 'The mailbox of the From address (after sender alignment)'],
    ['mailbox', 'Always the mailbox below'],
  ]),
)}
${row(m, 'graphMailbox', 'Mailbox', 'for "Always the mailbox below", e.g. scanner@contoso.com; it must be a mailbox (a shared mailbox works, no licence needed)', text(m, 'graphMailbox', 'text', 'scanner@contoso.com'))}
</fieldset>`;
}
