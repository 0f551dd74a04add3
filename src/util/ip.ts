import ipaddr from 'ipaddr.js';

/** "::ffff:10.0.0.5" from a dual-stack listener is the device "10.0.0.5": one spelling per device */
export const plainAddress = (address: string): string => (ipaddr.isValid(address) ? ipaddr.process(address).toString() : address);
