/** API tokens: create (shown once, with a scope), list, revoke */
import { html } from 'hono/html';
import {
  DEFAULT_SCOPE,
  TOKEN_SCOPES,
  type TokenInfo,
  type TokenScope,
} from '../../web-auth/tokens.js';
import { csrfField, when, type Html } from './layout.js';

const SCOPE_TEXT: Record<TokenScope, string> = {
  metrics: 'metrics: GET /metrics only (Prometheus)',
  read: 'read: also reads /api/… (status, queue, settings), changes nothing',
  admin: 'admin: may change settings, the queue, mailboxes and tokens',
};

export function tokensView(
  tokens: TokenInfo[],
  csrf: string,
  created?: { label: string; token: string },
): Html {
  return html`<h1>API tokens</h1>
<p class="lead">For scripts and monitoring: send <code>Authorization: Bearer &lt;token&gt;</code> to <code>/api/&hellip;</code> or <code>/metrics</code>. A token may do only what its scope allows.</p>
${created ? html`<div class="notice ok" role="status"><strong>Token "${created.label}" created.</strong> Copy it now; it is not shown again:<pre id="new-token">${created.token}</pre></div>` : ''}
${
  tokens.length
    ? html`<div class="table-wrap"><table><thead><tr><th>Name</th><th>Scope</th><th>Created</th><th></th></tr></thead><tbody>
${tokens.map((t) => html`<tr><td>${t.label}</td><td>${t.scope}</td><td>${when(t.createdAt)}</td><td><form method="post" action="/tokens/revoke">${csrfField(csrf)}<input type="hidden" name="id" value="${t.id}"><button class="small danger">Revoke</button></form></td></tr>`)}
</tbody></table></div>`
    : html`<p class="muted">No tokens yet.</p>`
}
<div class="card"><h2>New token</h2><form method="post" action="/tokens" class="stack">${csrfField(csrf)}
<label for="label">Name <span class="hint">what uses it, e.g. "Prometheus"</span></label><input type="text" id="label" name="label" required maxlength="60">
<label for="scope">Scope <span class="hint">the least the tool needs</span></label><select id="scope" name="scope">${TOKEN_SCOPES.map((scope) => html`<option value="${scope}" ${scope === DEFAULT_SCOPE ? 'selected' : ''}>${SCOPE_TEXT[scope]}</option>`)}</select>
<div class="actions"><button class="primary">Create token</button></div></form></div>`;
}
