/** Local mailboxes: who has one, how full, and the forms to manage them */
import { html } from 'hono/html';
import { csrfField, formatBytes, type Html } from './layout.js';

export interface MailboxRow {
  name: string;
  messages: number;
  bytes: number;
}

export function mailboxesView(
  rows: MailboxRow[],
  postmaster: string,
  pop3Port: number,
  csrf: string,
): Html {
  return html`<h1>Mailboxes</h1>
<p class="lead">Mail to a local domain, bounce reports and alerts land here. Read them with any POP3 client (port ${pop3Port}), user name = mailbox name.</p>
<div class="table-wrap"><table><thead><tr><th>Mailbox</th><th class="num">Messages</th><th class="num">Size</th><th>Set password</th><th></th></tr></thead><tbody>
${rows.map(
  (
    r,
  ) => html`<tr><td><strong>${r.name}</strong>${r.name === postmaster ? html` <span class="muted small">(postmaster: bounces and alerts)</span>` : ''}</td>
<td class="num">${r.messages}</td><td class="num">${formatBytes(r.bytes)}</td>
<td><form method="post" action="/mailboxes/password" class="actions">${csrfField(csrf)}<input type="hidden" name="name" value="${r.name}">
<input type="password" name="password" aria-label="New password for ${r.name}" autocomplete="new-password" required minlength="8"><button class="small">Set</button></form></td>
<td>${r.name === postmaster ? '' : html`<form method="post" action="/mailboxes/remove">${csrfField(csrf)}<input type="hidden" name="name" value="${r.name}"><button class="small danger">Remove</button></form>`}</td></tr>`,
)}</tbody></table></div>
<div class="card"><h2>Add a mailbox</h2><form method="post" action="/mailboxes" class="stack">${csrfField(csrf)}
<label for="name">Name <span class="hint">lowercase letters, digits, ".", "_", "-"</span></label><input type="text" id="name" name="name" required>
<label for="new-password">Password <span class="hint">at least 8 characters</span></label><input type="password" id="new-password" name="password" autocomplete="new-password" required minlength="8">
<div class="actions"><button class="primary">Add mailbox</button></div></form></div>`;
}
