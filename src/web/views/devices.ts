/** The device inventory: every printer, scanner and UPS that sent mail here */
import { html } from 'hono/html';
import type { Config } from '../../config/schema.js';
import type { Device } from '../../devices/inventory.js';
import { csrfField, formatBytes, pill, when, type Html } from './layout.js';

type Counts = Device['total'];

/** A device's own rules from `smtp.devices` (set in the config file) */
export type DeviceRule = Config['smtp']['devices'][string];

function ruleText(rule: DeviceRule | undefined): Html {
  if (!rule) return html``;
  const parts = [
    rule.allowDomains ? `only to ${rule.allowDomains.join(', ')}` : '',
    rule.maxMessagesPerMinute ? `at most ${rule.maxMessagesPerMinute} a minute` : '',
    rule.rewriteFrom === undefined ? '' : rule.rewriteFrom ? `sends as ${rule.rewriteFrom}` : 'sender never rewritten',
  ].filter(Boolean);
  return parts.length ? html`<br><span class="small muted rules">Rules: ${parts.join('; ')}</span>` : html``;
}

/** Messages, bytes, refused: the same three for today and since first seen */
const counts = (c: Counts, period: 'today' | 'total'): Html =>
  html`<td class="num ${period}-messages">${c.messages}</td><td class="num ${period}-bytes">${formatBytes(c.bytes)}</td><td class="num ${period}-rejects">${c.rejects}</td>`;

function deviceRow(d: Device, rule: DeviceRule | undefined, csrf: string): Html {
  return html`<tr data-address="${d.address}"><td><code>${d.address}</code><br><a class="small" href="/devices/${encodeURIComponent(d.address)}/transcripts">transcripts</a>${ruleText(rule)}</td>
<td><form method="post" action="/devices/name" class="actions">${csrfField(csrf)}<input type="hidden" name="address" value="${d.address}">
<input type="text" name="name" value="${d.name}" placeholder="e.g. 3rd floor copier" aria-label="Name for ${d.address}"><button class="small">Save</button></form></td>
<td>${d.helo || '—'}</td><td class="first-seen">${when(d.firstSeen)}</td><td>${when(d.lastSeen)}</td>
${counts(d.today, 'today')}${counts(d.total, 'total')}
<td class="last-result">${d.lastResult ? html`${pill(d.lastResult.status)} <span class="small muted">${d.lastResult.text}</span>` : '—'}</td></tr>`;
}

export function devicesView(devices: Device[], rules: (address: string) => DeviceRule | undefined, csrf: string): Html {
  if (devices.length === 0) return html`<h1>Devices</h1><div class="card"><p>No device has sent mail yet. Point a device's SMTP server setting at this box and it shows up here.</p></div>`;
  return html`<h1>Devices</h1><p class="lead">Every address that connected: what it sent today and since it was first seen, and how its last message went.
Give devices a name so you recognise them (with sender alignment on, the name can be the display name of the From). When a device "can't send", open its transcripts.
A device's own rules (allowed recipient domains, rate, sender address) are set under <code>smtp.devices</code> in the config file and shown here.</p>
<div class="table-wrap"><table><thead>
<tr><th rowspan="2">Address</th><th rowspan="2">Name</th><th rowspan="2">HELO name</th><th rowspan="2">First seen</th><th rowspan="2">Last seen</th><th colspan="3">Today</th><th colspan="3">Since first seen</th><th rowspan="2">Last result</th></tr>
<tr><th class="num">Messages</th><th class="num">Bytes</th><th class="num">Refused</th><th class="num">Messages</th><th class="num">Bytes</th><th class="num">Refused</th></tr>
</thead><tbody>
${devices.map((d) => deviceRow(d, rules(d.address), csrf))}</tbody></table></div>`;
}
