import ipaddr from 'ipaddr.js';
import { remembered } from './remembered.js';

/** "::ffff:10.0.0.5" from a dual-stack listener is the device "10.0.0.5": one spelling per device */
export const plainAddress = remembered((address: string): string =>
  ipaddr.isValid(address) ? ipaddr.process(address).toString() : address,
);

export type Network = [ipaddr.IPv4 | ipaddr.IPv6, number];

/** "10.0.0.0/8" or one address; an IPv4-mapped network (::ffff:0:0/96) is the IPv4 network it carries, as clients' addresses are */
export function parseNetwork(text: string): Network {
  const [network, bits] = text.includes('/')
    ? ipaddr.parseCIDR(text)
    : ([ipaddr.parse(text), ipaddr.parse(text).kind() === 'ipv4' ? 32 : 128] as Network);
  if (network instanceof ipaddr.IPv6 && network.isIPv4MappedAddress())
    return [network.toIPv4Address(), Math.max(0, bits - 96)];
  return [network, bits];
}
