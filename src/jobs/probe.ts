/**
 * The upstream probe: connect to the smarthost, read its greeting, EHLO and
 * (when the policy says so) STARTTLS with the same certificate checks as
 * delivery, then QUIT. No login and no message, so it can run often.
 */
import SMTPConnection from 'nodemailer/lib/smtp-connection';
import { smarthostTarget } from '../deliver/deliverer.js';
import { connect, connectionOptions } from '../deliver/smtp-client.js';
import type { Config } from '../config/schema.js';
import { errorMessage } from '../errors.js';

export type ProbeResult = { ok: true; text: string } | { ok: false; text: string } | { ok: null; text: string };

const PROBE_TIMEOUT_MS = 15_000;

export async function probeUpstream(config: Config): Promise<ProbeResult> {
  if (config.delivery.mode === 'mx') return { ok: null, text: 'Direct MX delivery: no single upstream to probe' };
  if (config.delivery.mode === 'graph') return { ok: null, text: 'Microsoft Graph: checked by each delivery and the pre-flight check on the Sender page' };
  const target = smarthostTarget(config);
  if (!target.host) return { ok: null, text: 'No upstream configured' };
  const where = `${target.host}:${target.port}`;
  const connection = new SMTPConnection(connectionOptions({ ...target, timeoutMs: PROBE_TIMEOUT_MS }));
  connection.on('error', () => undefined);
  try {
    await connect(connection);
    return { ok: true, text: `${where} answered EHLO${connection.secure ? ' over TLS' : ''}` };
  } catch (err) {
    return { ok: false, text: `${where}: ${errorMessage(err)}` };
  } finally {
    connection.quit();
    connection.close();
  }
}
