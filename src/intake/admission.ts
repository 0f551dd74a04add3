/**
 * Who may use the relay: a connection is admitted from smtp.allowNetworks
 * and within its client's connection limit; RCPT asks again, as the settings
 * may have changed since the client connected.
 */
import type { Config } from '../config/schema.js';
import { smtpReject, type RelayError } from '../errors.js';
import { NetworkPolicy } from './policy.js';
import type { SessionWatch } from './sessions.js';

export class Admission {
  private policySource: readonly string[];
  private policy: NetworkPolicy;

  constructor(
    private readonly config: () => Config,
    private readonly sessions: SessionWatch,
  ) {
    this.policySource = config().smtp.allowNetworks;
    this.policy = new NetworkPolicy(this.policySource);
  }

  /** Whether `client` is in smtp.allowNetworks as the settings are now */
  allows(client: string): boolean {
    return this.currentPolicy().allows(client);
  }

  /** Why a new connection from `client` is refused: outside smtp.allowNetworks, or over its connection limit */
  refusal(client: string): RelayError | undefined {
    if (!this.allows(client))
      return smtpReject(
        554,
        '5.7.1',
        `Access denied: client ${client} is not in the allowed networks of this relay`,
      );
    const { maxConnectionsPerClient } = this.config().smtp;
    if (this.sessions.connectionsFrom(client) >= maxConnectionsPerClient)
      return smtpReject(
        421,
        '4.7.0',
        `Too many connections from ${client} (limit ${maxConnectionsPerClient}), try again later`,
      );
    return undefined;
  }

  private currentPolicy(): NetworkPolicy {
    const networks = this.config().smtp.allowNetworks;
    if (networks !== this.policySource) {
      this.policySource = networks;
      this.policy = new NetworkPolicy(networks);
    }
    return this.policy;
  }
}
