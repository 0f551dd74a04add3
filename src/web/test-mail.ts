/**
 * "Send a test mail": to the smarthost at once through the Deliverer (the
 * same rewriting, signing and login as devices' mail), so the page can show
 * the upstream's own reply; to a local mailbox or by MX, through the queue
 * (the page then says where to watch it).
 */
import { Readable } from 'node:stream';
import type { UpstreamHealth } from '../alerts/upstream-health.js';
import type { Config } from '../config/schema.js';
import type { Deliverer } from '../deliver/deliverer.js';
import { deferred } from '../deliver/failure-policy.js';
import { formatAddress, parseAddress } from '../route/address.js';
import { route } from '../route/router.js';
import { newQueueId } from '../spool/ids.js';
import type { Spool } from '../spool/spool.js';

export type TestMailResult =
  | { kind: 'delivered'; to: string; reply: string }
  | { kind: 'failed'; to: string; status: 'deferred' | 'bounced'; reply: string }
  | { kind: 'queued'; to: string; id: string; route: 'local' | 'mx' | 'host' }
  | { kind: 'refused'; to: string; reason: string };

/** Through Microsoft Graph the From chooses the sending mailbox: the one devices' mail goes out as */
function testSender(config: Config): string {
  const { mode, graph, rewrite } = config.delivery;
  if (mode === 'graph')
    return (
      (graph.sender === 'mailbox' ? graph.mailbox : rewrite.headerFrom) ||
      `postmaster@${config.hostname}`
    );
  return `postmaster@${config.hostname}`;
}

function testMessage(config: Config, to: string, now: Date): Buffer {
  return Buffer.from(
    [
      `From: edge-relay <${testSender(config)}>`,
      `To: <${to}>`,
      `Subject: edge-relay test message`,
      `Date: ${now.toUTCString().replace('GMT', '+0000')}`,
      `Message-ID: <test-${now.getTime()}@${config.hostname}>`,
      'MIME-Version: 1.0',
      'Content-Type: text/plain; charset=utf-8',
      '',
      `This is a test message from edge-relay on ${config.hostname}, sent from its admin page at ${now.toISOString()}.`,
      'If you can read it, mail from your devices gets through too.',
      '',
    ].join('\r\n'),
  );
}

export interface TestMailDeps {
  config: Config;
  spool: Spool;
  health: UpstreamHealth;
  deliverer: Pick<Deliverer, 'deliver'>;
}

/** The page stands in for a device on this box: per-device sender rewriting treats it as one */
const PAGE_CLIENT = { address: '127.0.0.1', helo: 'edge-relay-admin-page' };

export async function sendTestMail(
  { config, spool, health, deliverer }: TestMailDeps,
  toText: string,
  now = new Date(),
): Promise<TestMailResult> {
  const address = parseAddress(toText.trim());
  if (!address) return { kind: 'refused', to: toText, reason: `Not an email address: "${toText}"` };
  const to = formatAddress(address);
  const from = `postmaster@${config.hostname}`;
  const destination = route(to, config);
  switch (destination.kind) {
    case 'unroutable':
      return { kind: 'refused', to, reason: destination.reason };
    case 'smarthost':
    case 'graph': {
      // Through Graph the From chooses the sending mailbox: the page sends as devices' mail goes out
      const openBody = async () => Readable.from([testMessage(config, to, now)]);
      const [result] = await deliverer.deliver({
        queueId: newQueueId(),
        from,
        recipients: [to],
        destination,
        openBody,
        client: PAGE_CLIENT,
      });
      const outcome = result?.outcome ?? deferred('No result from the upstream');
      if (outcome.status === 'delivered' || outcome.status === 'local') {
        health.success(outcome.detail);
        return { kind: 'delivered', to, reply: outcome.detail };
      }
      if (outcome.status === 'deferred') health.failure(outcome.reason);
      return { kind: 'failed', to, status: outcome.status, reply: outcome.reason };
    }
    case 'local':
    case 'mx':
    case 'host': {
      const message = { id: newQueueId(), from, to: [to], client: PAGE_CLIENT };
      const { id } = await spool.accept(
        message,
        Readable.from([testMessage(config, to, now)]),
        [],
        now,
      );
      return { kind: 'queued', to, id, route: destination.kind };
    }
  }
}
