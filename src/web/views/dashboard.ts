/** The dashboard: is mail flowing, and if not, why */
import { html } from 'hono/html';
import { wideNetworksWarning } from '../../config/networks.js';
import type { Overview } from '../overview.js';
import { formatBytes, formatUptime, pathCode, pill, when, type Html } from './layout.js';

const REACHABILITY: Record<Overview['upstream']['reachability'], string> = {
  reachable: 'Reachable',
  failing: 'Failing',
  unknown: 'Not contacted yet',
  'not-configured': 'Not configured',
};

/** "14:05", on the box's clock */
const clockTime = (ms: number): string => new Date(ms).toTimeString().slice(0, 5);

/** Sent against the limits of each paced upstream, and why mail is held back if it is */
function pacingFacts(o: Overview): Html {
  return html`${o.pacing.map(
    (
      p,
    ) => html`<dt>${p.label}</dt><dd class="pacing" data-upstream="${p.upstream}">${p.dayLimit ? `sent ${p.sentToday} of ${p.dayLimit} today` : `sent ${p.sentToday} today`}${p.messagesPerMinute ? html` <span class="muted">(at most ${p.messagesPerMinute} a minute)</span>` : ''}
${p.pausedUntil ? html`<br>${pill('failing', `paused until ${clockTime(p.pausedUntil)}`)} <span class="muted">(the provider asked us to slow down)</span>` : ''}
${p.held && p.held.reason !== 'throttled' ? html`<br>${pill('deferred', `holding mail until ${clockTime(p.held.until)}`)} <span class="muted">${p.held.text}; it waits in the queue, nothing is refused</span>` : ''}</dd>`,
  )}`;
}

function upstreamCard(o: Overview): Html {
  const u = o.upstream;
  return html`<div class="card"><h2>Upstream</h2>
<p>${pill(u.reachability, REACHABILITY[u.reachability])}</p>
${u.reachability === 'not-configured' ? html`<p>No upstream is set, so mail waits in the queue. <a href="/settings">Enter your provider's SMTP server</a>.</p>` : ''}
<dl class="facts small"><dt>Sends via</dt><dd>${u.target || '—'}</dd>
${u.sizeLimit ? html`<dt>Largest message</dt><dd id="upstream-size">${formatBytes(u.sizeLimit.bytes)} <span class="muted">(its EHLO says; larger scans are refused at the device)</span></dd>` : ''}
${pacingFacts(o)}
<dt>Last success</dt><dd>${when(u.lastSuccess?.at)}</dd>
<dt>Last error</dt><dd>${u.lastError ? html`${when(u.lastError.at)}<br><span class="muted">${u.lastError.text}</span>` : html`<span class="muted">none</span>`}</dd>
${u.failingSince ? html`<dt>Failing since</dt><dd>${when(u.failingSince)}</dd>` : ''}
${u.signIn ? html`<dt>Sign-in</dt><dd id="sign-in">${pill(u.signIn.state === 'ok' ? 'delivered' : 'failing', u.signIn.state)} ${u.signIn.state === 'ok' ? '' : html`<span class="muted">${u.signIn.reason ?? ''}</span> <a href="/sender">Sign in</a>`}</dd>` : ''}</dl></div>`;
}

function queueCard(o: Overview): Html {
  const total = o.queue.queued + o.queue.deferred + o.queue.held;
  return html`<div class="card"><h2>Queue</h2><div class="big">${total}</div><p class="muted small">messages waiting</p>
<dl class="facts small"><dt>New</dt><dd>${o.queue.queued}</dd><dt>Waiting to retry</dt><dd>${o.queue.deferred}</dd><dt>On hold</dt><dd>${o.queue.held}</dd></dl>
<p class="small"><a href="/queue">Open the queue</a></p></div>`;
}

function todayCard(o: Overview): Html {
  const t = o.today;
  return html`<div class="card"><h2>Today</h2><div class="big">${t.accepted}</div><p class="muted small">messages received from devices</p>
<dl class="facts small"><dt>Delivered</dt><dd>${t.delivered}</dd><dt>To local mailboxes</dt><dd>${t.local}</dd>
<dt>Retries</dt><dd>${t.deferred}</dd><dt>Bounced</dt><dd>${t.bounced}</dd><dt>Refused</dt><dd>${t.rejected}</dd></dl></div>`;
}

function systemCard(o: Overview): Html {
  const usedShare = o.disk.totalBytes ? 1 - o.disk.freeBytes / o.disk.totalBytes : 0;
  return html`<div class="card"><h2>This box</h2>
<dl class="facts small"><dt>Free disk</dt><dd>${formatBytes(o.disk.freeBytes)} of ${formatBytes(o.disk.totalBytes)} ${usedShare > 0.9 ? pill('failing', 'almost full') : ''}</dd>
<dt>Data folder</dt><dd>${pathCode(o.disk.path)}</dd><dt>Version</dt><dd>${o.version}</dd><dt>Running for</dt><dd>${formatUptime(o.uptimeSeconds)}</dd>
<dt>Alerts</dt><dd>${o.alerts.upstream.firing || o.alerts.queue.firing || o.alerts.dailyCap.firing ? pill('failing', 'active') : pill('delivered', 'none')}</dd></dl></div>`;
}

function recentTable(o: Overview): Html {
  if (o.recent.length === 0)
    return html`<p class="muted">No deliveries since the relay started.</p>`;
  return html`<div class="table-wrap"><table><thead><tr><th>When</th><th>From</th><th>To</th><th>Result</th><th>Details</th></tr></thead><tbody>
${o.recent.map((r) => html`<tr><td>${when(r.at)}</td><td class="addr">${r.from || '<>'}</td><td class="addr">${r.to}</td><td>${pill(r.status)}</td><td class="small muted detail">${r.text}</td></tr>`)}
</tbody></table></div>`;
}

export function dashboardView(o: Overview): Html {
  return html`<h1>Dashboard</h1>
${o.clockProblem ? html`<div class="notice error" id="clock">${o.clockProblem}.</div>` : ''}
${o.wideNetworks.length ? html`<div class="notice warn" id="wide-networks">${wideNetworksWarning(o.wideNetworks)}. <a href="/settings">Change the allowed networks</a>.</div>` : ''}
${o.configPersistent ? '' : html`<div class="notice warn">Settings changed on this page last only until the relay restarts: it was started without <code>--config FILE</code>.</div>`}
<div class="grid">${upstreamCard(o)}${queueCard(o)}${todayCard(o)}${systemCard(o)}</div>
<h2>Recent deliveries</h2>${recentTable(o)}`;
}
