/**
 * The daily digest: yesterday-and-today in a few lines, queued through the
 * spool like any other message, so it goes to a local mailbox or out through
 * the upstream by the usual routing.
 */
import { Readable } from 'node:stream';
import type { Config } from '../config/schema.js';
import type { HealthSnapshot } from '../alerts/upstream-health.js';
import type { DayCounts } from '../metrics/activity.js';
import type { QueueCounts } from '../metrics/metrics.js';
import { newQueueId } from '../spool/ids.js';
import type { Spool } from '../spool/spool.js';

export interface DigestFacts {
  today: DayCounts;
  queue: QueueCounts;
  health: HealthSnapshot;
  devices: number;
}

export function digestText(config: Config, to: string, facts: DigestFacts, now: Date): string {
  const { today, queue, health } = facts;
  const lines = [
    `edge-relay on ${config.hostname}: summary for ${today.day}`,
    '',
    `Accepted from devices: ${today.accepted}   Refused: ${today.rejected}`,
    `Delivered upstream: ${today.delivered}   Local mailboxes: ${today.local}   Deferred attempts: ${today.deferred}   Bounced: ${today.bounced}`,
    `In the queue now: ${queue.queued} new, ${queue.deferred} waiting to retry, ${queue.held} on hold`,
    `Upstream: ${health.reachability}${health.lastError ? ` (last error: ${health.lastError.text})` : ''}`,
    `Devices known: ${facts.devices}`,
  ];
  const header = [
    `From: edge-relay <postmaster@${config.hostname}>`,
    `To: ${to}`,
    `Subject: [edge-relay] Daily summary ${today.day}`,
    `Date: ${now.toUTCString().replace('GMT', '+0000')}`,
    `Message-ID: <digest-${now.getTime()}@${config.hostname}>`,
    'Auto-Submitted: auto-generated',
    'MIME-Version: 1.0',
    'Content-Type: text/plain; charset=utf-8',
  ];
  return `${header.join('\r\n')}\r\n\r\n${lines.join('\r\n')}\r\n`;
}

export async function queueDigest(
  spool: Spool,
  config: Config,
  facts: DigestFacts,
  now = new Date(),
): Promise<string> {
  // A bare name means a local mailbox
  const to = config.alerts.digest.to.includes('@')
    ? config.alerts.digest.to
    : `${config.alerts.digest.to}@${config.mailbox.localDomains[0] ?? config.hostname}`;
  const message = {
    id: newQueueId(),
    from: `postmaster@${config.hostname}`,
    to: [to],
    client: { address: '127.0.0.1', helo: 'edge-relay-digest' },
  };
  const { id } = await spool.accept(
    message,
    Readable.from([Buffer.from(digestText(config, to, facts, now))]),
  );
  return id;
}
