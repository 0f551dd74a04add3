/** The queue: what is waiting, why, and the buttons to act on it */
import { html } from 'hono/html';
import type { QueueListItem } from '../../spool/records.js';
import { plural } from '../../util/plural.js';
import { csrfField, formatBytes, pill, when, type Html } from './layout.js';

function recipients(item: QueueListItem): Html {
  return html`${item.recipients.map((r) => html`<div>${r.address} ${pill(r.status)}</div>`)}`;
}

/** When the next attempt is, how many there were, and the last error: everything about "why is it still here" */
function status(item: QueueListItem): Html {
  const due = !item.nextAttempt || new Date(item.nextAttempt).getTime() <= Date.now();
  return html`<div>${item.held ? pill('held', 'on hold') : due ? 'next try now' : html`next try ${when(item.nextAttempt)}`}</div>
<div class="small muted">${plural(item.attempts, 'attempt')}${item.lastError ? html`: ${item.lastError}` : ''}</div>
${item.heldBack ? html`<div class="small held-back">${item.heldBack}</div>` : ''}`;
}

function rowButtons(item: QueueListItem): Html {
  return html`<div class="stacked"><button class="small" name="do" value="retry:${item.id}">Retry</button>
${item.held ? html`<button class="small" name="do" value="release:${item.id}">Release</button>` : html`<button class="small" name="do" value="hold:${item.id}">Hold</button>`}
<button class="small danger" name="do" value="delete:${item.id}">Delete</button></div>`;
}

function row(item: QueueListItem): Html {
  return html`<tr><td><input type="checkbox" name="ids" value="${item.id}" aria-label="Select ${item.id}"></td>
<td><a href="/queue/${item.id}"><code>${item.id}</code></a><div class="small muted">${formatBytes(item.size)}, received ${when(item.receivedAt)}</div></td>
<td class="addr"><div class="small muted">from ${item.from || '<>'}</div>${recipients(item)}</td>
<td class="detail">${status(item)}</td><td>${rowButtons(item)}</td></tr>`;
}

export function queueView(items: QueueListItem[], csrf: string): Html {
  if (items.length === 0)
    return html`<h1>Queue</h1><div class="card"><p>The queue is empty: every message has been delivered.</p></div>`;
  return html`<h1>Queue</h1><p class="lead">${plural(items.length, 'message')} waiting. Messages are retried on their own; use these buttons only when you know better.</p>
<form method="post" action="/queue">${csrfField(csrf)}
<div class="actions"><span class="muted small">Selected:</span>
<button name="do" value="retry">Retry now</button><button name="do" value="hold">Hold</button><button name="do" value="release">Release</button>
<button name="do" value="delete" class="danger">Delete</button><span class="muted small">·</span><button name="do" value="retry-all">Retry everything now</button></div>
<div class="table-wrap"><table><thead><tr><th></th><th>Message</th><th>From and to</th><th>Status</th><th></th></tr></thead>
<tbody>${items.map(row)}</tbody></table></div></form>`;
}

export function messageView(item: QueueListItem, headers: string, csrf: string): Html {
  return html`<h1>Message <code>${item.id}</code></h1>
<div class="card"><dl class="facts"><dt>From</dt><dd>${item.from || '<> (a bounce report)'}</dd><dt>To</dt><dd>${recipients(item)}</dd>
<dt>Size</dt><dd>${formatBytes(item.size)}</dd><dt>Received</dt><dd>${when(item.receivedAt)} from ${item.client.address} (HELO ${item.client.helo || '—'})</dd>
<dt>Attempts</dt><dd>${item.attempts}</dd><dt>Next try</dt><dd>${item.held ? 'on hold' : when(item.nextAttempt)}</dd><dt>Last error</dt><dd>${item.lastError ?? '—'}</dd></dl>
<form method="post" action="/queue" class="actions">${csrfField(csrf)}<button name="do" value="retry:${item.id}">Retry now</button>
${item.held ? html`<button name="do" value="release:${item.id}">Release</button>` : html`<button name="do" value="hold:${item.id}">Hold</button>`}
<button name="do" value="delete:${item.id}" class="danger">Delete</button></form></div>
<h2>Headers</h2><pre>${headers}</pre><p><a href="/queue">Back to the queue</a></p>`;
}
