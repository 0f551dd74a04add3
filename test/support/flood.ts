/** Raw sockets that hold a relay's connection slots the way a hostile LAN host does */
import net from 'node:net';

export interface Probe {
  socket: net.Socket;
  /** Everything the relay said on this connection */
  received: string;
  openedAt: number;
  closedAt: number | undefined;
}

/** Connects from `localAddress` (a loopback address standing for one LAN host) and records what comes back */
export function openProbe(port: number, localAddress: string): Promise<Probe> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ port, host: '127.0.0.1', localAddress });
    const probe: Probe = { socket, received: '', openedAt: Date.now(), closedAt: undefined };
    socket.on('data', (d: Buffer) => (probe.received += d.toString('latin1')));
    socket.on('close', () => (probe.closedAt = Date.now()));
    socket.on('error', () => undefined);
    socket.once('connect', () => resolve(probe));
    socket.once('error', reject);
  });
}

/** `perHost` connections from each of `hosts`, opened 50 at a time */
export async function openFlood(
  port: number,
  hosts: readonly string[],
  perHost: number,
): Promise<Probe[]> {
  const sources = hosts.flatMap((host) => Array.from({ length: perHost }, () => host));
  const probes: Probe[] = [];
  for (let i = 0; i < sources.length; i += 50)
    probes.push(
      ...(await Promise.all(sources.slice(i, i + 50).map((host) => openProbe(port, host)))),
    );
  return probes;
}

/** The last reply the relay sent before it closed the connection, e.g. "421 4.4.2 ..." */
export const lastReply = (probe: Probe): string =>
  probe.received.trimEnd().split('\r\n').at(-1) ?? '';
