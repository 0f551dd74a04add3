/**
 * Which entries of smtp.allowNetworks open the relay to the world (pure).
 * A site's own networks are private ranges of any size, or public ranges the
 * size an organisation holds; anything wider lets strangers send mail through
 * the company's upstream account, so it needs smtp.allowWideNetworks.
 */
import { parseNetwork, type Network } from '../util/ip.js';

/** Private, loopback, link-local and shared (CGNAT) ranges: no stranger on the internet sends from these */
const PRIVATE: Network[] = [
  '10.0.0.0/8',
  '172.16.0.0/12',
  '192.168.0.0/16',
  '100.64.0.0/10',
  '127.0.0.0/8',
  '169.254.0.0/16',
  'fc00::/7',
  'fe80::/10',
  '::1/128',
].map(parseNetwork);

/** The widest public prefix a site may list without the flag: a /16 (65,536 IPv4 addresses), an IPv6 /32 (an ISP's whole allocation) */
const WIDEST_PUBLIC = { ipv4: 16, ipv6: 32 } as const;

export const WIDE_NETWORKS_FLAG = 'smtp.allowWideNetworks';

const inside = ([address, bits]: Network, [range, rangeBits]: Network): boolean =>
  address.kind() === range.kind() && bits >= rangeBits && address.match(range, rangeBits);

/** Why `text` opens the relay to the world, or undefined for a site-sized network (or text that is no network) */
export function wideNetworkProblem(text: string): string | undefined {
  let network: Network;
  try {
    network = parseNetwork(text);
  } catch {
    return undefined;
  }
  const [address, bits] = network;
  const kind = address.kind();
  if (bits >= WIDEST_PUBLIC[kind] || PRIVATE.some((range) => inside(network, range)))
    return undefined;
  const reach =
    bits === 0
      ? `lets the whole ${kind === 'ipv4' ? 'IPv4' : 'IPv6'} internet send mail through this relay`
      : `lets a public range wider than /${WIDEST_PUBLIC[kind]} send mail through this relay`;
  return `"${text}" ${reach} (an open relay on your upstream account): list only your own networks, or set ${WIDE_NETWORKS_FLAG} to true if you really mean it`;
}

/** The entries of `networks` that open the relay to the world */
export const wideNetworks = (networks: readonly string[]): string[] =>
  networks.filter((text) => wideNetworkProblem(text) !== undefined);

/** What the dashboard and the log say while such entries are allowed */
export const wideNetworksWarning = (networks: readonly string[]): string =>
  `Open to the world: smtp.allowNetworks lets ${networks.join(', ')} send mail through this relay (${WIDE_NETWORKS_FLAG} is on), so anyone who reaches its SMTP port can send through your upstream account`;
