/**
 * The check shared by the tests of the packaged relay (the single executable,
 * the relay installed in the image): a scan relayed end to end, then a clean stop.
 */
import assert from 'node:assert/strict';
import { smtplibSend } from './clients.js';
import type { ServedProcess } from './relay.js';
import type { Upstream } from './upstream.js';

/**
 * Sends `message` (a scan that starts "From: scanner") through a served relay
 * to boss@example.com and checks it reaches `upstream` over TLS byte for byte;
 * then that SIGTERM stops the relay with exit status 0.
 */
export async function assertRelaysScanAndStops(
  relay: ServedProcess,
  upstream: Upstream,
  message: string,
  { timeoutMs }: { timeoutMs: number },
): Promise<void> {
  const reply = await smtplibSend(
    relay.smtpPort,
    'scanner@office.test',
    ['boss@example.com'],
    message,
  );
  assert.match(reply, /^250 .*queued as [0-9A-Z]+/);
  const [received] = await upstream.waitFor(1, timeoutMs);
  assert.equal(received?.secure, true, 'delivered over TLS');
  const raw = received?.raw.toString() ?? '';
  assert.equal(raw.slice(raw.indexOf('From: scanner')), message, 'message bytes arrive unchanged');
  relay.child.kill('SIGTERM');
  assert.equal(await relay.exited, 0, relay.output());
}
