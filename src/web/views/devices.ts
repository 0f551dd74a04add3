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
    rule.rewriteFrom === undefined
      ? ''
      : rule.rewriteFrom
        ? `sends as ${rule.rewriteFrom}`
        : 'sender never rewritten',
  ].filter(Boolean);
  return parts.length
    ? html`<br><span class="small muted rules">Rules: ${parts.join('; ')}</span>`
    : html``;
}

/** Messages, bytes, refused: the same three for today and since first seen */
const counts = (c: Counts, period: 'today' | 'total'): Html =>
  html`<td class="num nowrap"><span class="${period}-messages">${c.messages}</span> sent<br><span class="small muted"><span class="${period}-bytes">${formatBytes(c.bytes)}</span>, <span class="${period}-rejects">${c.rejects}</span> refused</span></td>`;

function deviceRow(d: Device, rule: DeviceRule | undefined, csrf: string): Html {
  return html`<tr data-address="${d.address}"><td><code>${d.address}</code><br><span class="small muted">HELO ${d.helo || '—'}</span><br><a class="small" href="/devices/${encodeURIComponent(d.address)}/transcripts">transcripts</a>${ruleText(rule)}</td>
<td><form method="post" action="/devices/name" class="actions">${csrfField(csrf)}<input type="hidden" name="address" value="${d.address}">
<input type="text" class="name" name="name" value="${d.name}" placeholder="e.g. 3rd floor copier" aria-label="Name for ${d.address}"><button class="small">Save</button></form></td>
<td class="small nowrap"><div class="first-seen">first ${when(d.firstSeen)}</div><div>last ${when(d.lastSeen)}</div></td>
${counts(d.today, 'today')}${counts(d.total, 'total')}
<td class="last-result detail">${d.lastResult ? html`${pill(d.lastResult.status)} <span class="small muted">${d.lastResult.text}</span>` : '—'}</td></tr>`;
}

export function devicesView(
  devices: Device[],
  rules: (address: string) => DeviceRule | undefined,
  csrf: string,
): Html {
  if (devices.length === 0)
    return html`<h1>Devices</h1><div class="card"><p>No device has sent mail yet. Point a device's SMTP server setting at this box and it shows up here.</p></div>`;
  return html`<h1>Devices</h1><p class="lead">Every address that connected: what it sent today and since it was first seen, and how its last message went.
Give devices a name so you recognise them (with sender alignment on, the name can be the display name of the From). When a device "can't send", open its transcripts.
A device's own rules (allowed recipient domains, rate, sender address) are set under <code>smtp.devices</code> in the config file and shown here.</p>
<div class="table-wrap"><table><thead>
<tr><th>Address</th><th>Name</th><th>Seen</th><th class="num">Today</th><th class="num">Since first seen</th><th>Last result</th></tr>
</thead><tbody>
${devices.map((d) => deviceRow(d, rules(d.address), csrf))}</tbody></table></div>`;
}
