/** The device inventory: every printer, scanner and UPS that sent mail here */
import { html } from 'hono/html';
import type { Device } from '../../devices/inventory.js';
import { csrfField, formatBytes, pill, when, type Html } from './layout.js';

export function devicesView(devices: Device[], csrf: string): Html {
  if (devices.length === 0) return html`<h1>Devices</h1><div class="card"><p>No device has sent mail yet. Point a device's SMTP server setting at this box and it shows up here.</p></div>`;
  return html`<h1>Devices</h1><p class="lead">Every address that connected, with what it sent today. Give devices a name so you recognise them.</p>
<div class="table-wrap"><table><thead><tr><th>Address</th><th>Name</th><th>HELO name</th><th class="num">Today</th><th class="num">Bytes today</th><th class="num">Refused today</th><th>Last seen</th><th>Last result</th></tr></thead><tbody>
${devices.map(
  (d) => html`<tr><td><code>${d.address}</code><br><a class="small" href="/devices/${encodeURIComponent(d.address)}/transcripts">transcripts</a></td>
<td><form method="post" action="/devices/name" class="actions">${csrfField(csrf)}<input type="hidden" name="address" value="${d.address}">
<input type="text" name="name" value="${d.name}" placeholder="e.g. 3rd floor copier" aria-label="Name for ${d.address}"><button class="small">Save</button></form></td>
<td>${d.helo || '—'}</td><td class="num">${d.today.messages}</td><td class="num">${formatBytes(d.today.bytes)}</td><td class="num">${d.today.rejects}</td>
<td>${when(d.lastSeen)}</td><td>${d.lastResult ? html`${pill(d.lastResult.status)} <span class="small muted">${d.lastResult.text}</span>` : '—'}</td></tr>`,
)}</tbody></table></div>`;
}
