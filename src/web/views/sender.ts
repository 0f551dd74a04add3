/** The sender page: OAuth2 sign-in to the smarthost, the DKIM record to publish, the pre-flight check */
import { html } from 'hono/html';
import type { Preflight } from '../../deliver/preflight.js';
import type { DkimRecord } from '../../deliver/dkim.js';
import type { OAuthStatus } from '../../oauth/client.js';
import type { DeviceLoginState } from '../../oauth/device-login.js';
import type { Transcript } from '../../intake/transcripts.js';
import { csrfField, pill, when, type Html } from './layout.js';

export interface SenderPage {
  oauthEnabled: boolean;
  /** device: an admin signs in here; client_credentials: app-only, nobody signs in */
  flow: 'device' | 'client_credentials';
  oauth: OAuthStatus;
  login: DeviceLoginState;
  dkim: DkimRecord | { error: string } | undefined;
  preflight: Preflight | undefined;
  domain: string;
}

const OAUTH_TONE: Record<OAuthStatus['state'], string> = {
  ok: 'delivered',
  'needs-consent': 'failing',
  failing: 'deferred',
  'not-configured': 'held',
};

function oauthCard(p: SenderPage, csrf: string): Html {
  if (!p.oauthEnabled) {
    return html`<div class="card"><h2>Sign-in to the upstream (OAuth2)</h2><p>Off: the smarthost uses a user name and password. Microsoft 365 and Google are retiring passwords for SMTP; set <a href="/settings#oauth"><em>Settings &rarr; Upstream &rarr; Authentication</em></a> to OAuth2 and fill in <em>Upstream sign-in (OAuth2)</em>, then come back here to sign in (step by step in the docs: docs/upstreams.md, "Microsoft 365" or "Google Workspace").</p></div>`;
  }
  const login = p.login;
  return html`<div class="card"><h2>Sign-in to the upstream (OAuth2)</h2>
<p>${pill(OAUTH_TONE[p.oauth.state], p.oauth.state)} ${p.oauth.reason ?? ''}</p>
${p.oauth.lastRefresh ? html`<p class="small muted">Last token: ${p.oauth.lastRefresh}</p>` : ''}
${
  login.state === 'waiting'
    ? html`<p class="lead">Open <a href="${login.verificationUri}" rel="noreferrer" target="_blank">${login.verificationUri}</a> on any computer and enter the code <strong><code id="user-code">${login.userCode}</code></strong>. This page shows the result when you reload it.</p>`
    : ''
}
${login.state === 'failed' ? html`<p>${pill('failing', 'sign-in failed')} ${login.reason}</p>` : ''}
${login.state === 'done' ? html`<p>${pill('delivered', 'signed in')} at ${login.at}</p>` : ''}
${
  p.flow === 'client_credentials'
    ? html`<p id="app-only">App-only sign-in (client credentials): nobody signs in here. The relay gets its tokens with the client secret from <a href="/settings#oauth">Settings</a>; the status above turns <em>ok</em> with the first token.</p>`
    : html`<form method="post" action="/sender/oauth/start" class="actions">${csrfField(csrf)}<button>Sign in (device code)</button></form>
<form method="post" action="/sender/oauth/signout" class="actions">${csrfField(csrf)}<button class="small">Sign out</button></form>`
}</div>`;
}

function dkimCard(record: SenderPage['dkim']): Html {
  if (!record)
    return html`<div class="card"><h2>DKIM</h2><p>Off. To sign relayed mail, tick <a href="/settings#dkim"><em>Settings &rarr; DKIM signing</em></a> and enter the domain and selector; this page then shows the DNS record to publish.</p></div>`;
  if ('error' in record)
    return html`<div class="card"><h2>DKIM</h2><p>${pill('failing', 'problem')} ${record.error}</p></div>`;
  return html`<div class="card"><h2>DKIM</h2><p>Publish this TXT record in your DNS, then run the pre-flight check below.</p>
<dl class="facts small"><dt>Name</dt><dd><code id="dkim-name">${record.name}</code></dd><dt>Type</dt><dd>TXT</dd><dt>Value</dt><dd><code id="dkim-value" style="word-break: break-all">${record.value}</code></dd></dl></div>`;
}

function preflightCard(p: SenderPage, csrf: string): Html {
  const result = p.preflight;
  return html`<div class="card"><h2>Pre-flight check</h2><p>How the world sees a sender domain: MX, SPF, DMARC${p.dkim && !('error' in p.dkim) ? ' and DKIM' : ''}, as looked up from this box.</p>
<form method="post" action="/sender/preflight" class="actions">${csrfField(csrf)}<input type="text" name="domain" value="${p.domain}" placeholder="contoso.com" aria-label="Sender domain"><button>Check</button></form>
${
  result
    ? html`<p>${pill(result.status === 'ok' ? 'delivered' : result.status === 'problem' ? 'failing' : 'deferred', result.status)} <strong>${result.domain}</strong></p>
<p class="lead" id="preflight-verdict">${result.verdict}</p>
<div class="table-wrap"><table><thead><tr><th>Check</th><th>Result</th><th>What it means</th><th>Fix</th></tr></thead><tbody>
${result.checks.map((c) => html`<tr><td>${c.name.toUpperCase()}</td><td>${pill(c.status === 'ok' ? 'delivered' : c.status === 'problem' ? 'failing' : 'deferred', c.status)}</td><td>${c.summary}</td><td>${c.fix ?? ''}</td></tr>`)}
</tbody></table></div>`
    : ''
}</div>`;
}

export function senderView(p: SenderPage, csrf: string): Html {
  return html`<h1>Sender</h1><p class="lead">Modern upstreams want a signed-in account and aligned, signed senders. Old devices can't do that; this box does it for them.</p>
${oauthCard(p, csrf)}${dkimCard(p.dkim)}${preflightCard(p, csrf)}`;
}

const TRANSCRIPT_PREFIX: Record<Transcript['lines'][0]['dir'], string> = {
  C: 'device >',
  S: 'relay  <',
  E: '   !!!  ',
};

export function transcriptsView(address: string, transcripts: Transcript[]): Html {
  return html`<h1>Transcripts of <code>${address}</code></h1><p class="lead">The last SMTP sessions of this device as the box saw them (passwords hidden, message bodies left out; kept in memory until a restart).</p>
${transcripts.length === 0 ? html`<div class="card"><p>No session from this address since the last start.</p></div>` : ''}
${transcripts
  .slice()
  .reverse()
  .map(
    (t) =>
      html`<div class="card"><h2>Session ${when(t.startedAt)}</h2><pre class="small">${t.lines.map((l) => `${TRANSCRIPT_PREFIX[l.dir]} ${l.text}\n`).join('')}${t.truncated ? '… (later lines not kept)\n' : ''}</pre></div>`,
  )}
<p><a href="/devices">Back to devices</a></p>`;
}
