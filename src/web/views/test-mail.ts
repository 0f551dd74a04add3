/** Send a test mail, and show what the upstream answered */
import { html } from 'hono/html';
import type { TestMailResult } from '../test-mail.js';
import { csrfField, pill, type Html } from './layout.js';

function resultCard(result: TestMailResult): Html {
  switch (result.kind) {
    case 'delivered':
      return html`<div class="card" id="result"><h2>${pill('delivered', 'Accepted by the upstream')}</h2><p>The upstream took the message for ${result.to}. Its reply:</p><pre>${result.reply}</pre></div>`;
    case 'failed':
      return html`<div class="card" id="result"><h2>${pill(result.status, result.status === 'bounced' ? 'Refused by the upstream' : 'Not delivered (temporary)')}</h2>
<p>What happened:</p><pre>${result.reply}</pre><p class="small muted">Check the server, port, encryption, user name and password under <a href="/settings">Settings</a>.</p></div>`;
    case 'queued':
      return html`<div class="card" id="result"><h2>${pill('queued', 'Queued')}</h2><p>The message for ${result.to} is in the queue as <code>${result.id}</code>
(${result.route === 'local' ? 'to a local mailbox' : result.route === 'mx' ? 'direct MX delivery' : 'a per-domain route'}). Watch it on the <a href="/">dashboard</a> or in the <a href="/queue">queue</a>.</p></div>`;
    case 'refused':
      return html`<div class="card" id="result"><h2>${pill('failing', 'Not sent')}</h2><p>${result.reason}</p></div>`;
  }
}

export function testMailView(csrf: string, to: string, result?: TestMailResult): Html {
  return html`<h1>Send a test mail</h1><p class="lead">Sends a short message now, the way the relay sends devices' mail, and shows the answer.</p>
<div class="card"><form method="post" action="/test-mail" class="stack">${csrfField(csrf)}
<label for="to">Send to</label><input type="email" id="to" name="to" value="${to}" required placeholder="you@example.com">
<div class="actions"><button class="primary">Send test mail</button></div></form></div>
${result ? resultCard(result) : ''}`;
}
