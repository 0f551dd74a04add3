/**
 * The upstream probe: the Deliverer connects to the smarthost, reads its
 * greeting, EHLO and (when the policy says so) STARTTLS with the same
 * certificate checks as delivery, then QUITs. No login and no message, so
 * it can run often.
 */
import type { Config } from '../config/schema.js';
import type { Deliverer, Greeting } from '../deliver/deliverer.js';

/** ok: null when there is no single upstream to probe */
export type ProbeResult = Greeting | { ok: null; text: string };

const PROBE_TIMEOUT_MS = 15_000;

export async function probeUpstream(
  config: Config,
  deliverer: Pick<Deliverer, 'probeSmarthost'>,
): Promise<ProbeResult> {
  if (config.delivery.mode === 'mx')
    return { ok: null, text: 'Direct MX delivery: no single upstream to probe' };
  if (config.delivery.mode === 'graph')
    return {
      ok: null,
      text: 'Microsoft Graph: checked by each delivery and the pre-flight check on the Sender page',
    };
  if (!config.delivery.smarthost.host) return { ok: null, text: 'No upstream configured' };
  return deliverer.probeSmarthost(PROBE_TIMEOUT_MS);
}
