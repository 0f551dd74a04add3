/** Who may send through the relay (pure) */
import ipaddr from 'ipaddr.js';
import { parseNetwork, type Network } from '../util/ip.js';
import { remembered } from '../util/remembered.js';

export class NetworkPolicy {
  private readonly networks: Network[];

  constructor(cidrs: readonly string[]) {
    this.networks = cidrs.map(parseNetwork);
  }

  /**
   * IPv4-mapped IPv6 addresses (::ffff:10.0.0.5) count as the IPv4 address
   * they carry. Remembered per address: RCPT asks again for every recipient
   */
  readonly allows = remembered((address: string) => this.decide(address));

  private decide(address: string): boolean {
    let ip: ipaddr.IPv4 | ipaddr.IPv6;
    try {
      ip = ipaddr.process(address.replace(/%.*$/, ''));
    } catch {
      return false;
    }
    return this.networks.some(
      ([network, bits]) => network.kind() === ip.kind() && ip.match(network, bits),
    );
  }
}
