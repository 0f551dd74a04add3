/** Who may send through the relay (pure) */
import ipaddr from 'ipaddr.js';
import { parseNetwork, type Network } from '../util/ip.js';

/** A LAN has a few dozen senders; a scan of many addresses only empties the cache */
const REMEMBERED_ADDRESSES = 1024;

export class NetworkPolicy {
  private readonly networks: Network[];
  /** The answers so far: RCPT asks again for every recipient, and parsing an address each time showed in profiles */
  private readonly answers = new Map<string, boolean>();

  constructor(cidrs: readonly string[]) {
    this.networks = cidrs.map(parseNetwork);
  }

  /** IPv4-mapped IPv6 addresses (::ffff:10.0.0.5) count as the IPv4 address they carry */
  allows(address: string): boolean {
    let answer = this.answers.get(address);
    if (answer === undefined) {
      if (this.answers.size >= REMEMBERED_ADDRESSES) this.answers.clear();
      answer = this.decide(address);
      this.answers.set(address, answer);
    }
    return answer;
  }

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
