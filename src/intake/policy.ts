/** Who may send through the relay (pure) */
import ipaddr from 'ipaddr.js';

type Network = [ipaddr.IPv4 | ipaddr.IPv6, number];

export class NetworkPolicy {
  private readonly networks: Network[];

  constructor(cidrs: readonly string[]) {
    this.networks = cidrs.map(parseNetwork);
  }

  /** IPv4-mapped IPv6 addresses (::ffff:10.0.0.5) count as the IPv4 address they carry */
  allows(address: string): boolean {
    let ip: ipaddr.IPv4 | ipaddr.IPv6;
    try {
      ip = ipaddr.process(address.replace(/%.*$/, ''));
    } catch {
      return false;
    }
    return this.networks.some(([network, bits]) => network.kind() === ip.kind() && ip.match(network, bits));
  }
}

function parseNetwork(text: string): Network {
  const [network, bits] = text.includes('/') ? ipaddr.parseCIDR(text) : hostNetwork(ipaddr.parse(text));
  if (network instanceof ipaddr.IPv6 && network.isIPv4MappedAddress()) return [network.toIPv4Address(), Math.max(0, bits - 96)];
  return [network, bits];
}

const hostNetwork = (ip: ipaddr.IPv4 | ipaddr.IPv6): Network => [ip, ip.kind() === 'ipv4' ? 32 : 128];
