/**
 * Before anything is created or claimed: is every port the relay will
 * listen on free? A port in use is named with the setting that chose it,
 * instead of a raw EADDRINUSE after half the relay has started.
 */
import net from 'node:net';
import type { Config } from '../config/schema.js';
import { RelayError, errnoCode, errorMessage } from '../errors.js';

export interface Listener {
  /** The config key that sets the port, e.g. "smtp.port" */
  key: string;
  host: string;
  port: number;
}

export function listenersOf(config: Config): Listener[] {
  const all: Listener[] = [
    { key: 'smtp.port', host: config.smtp.host, port: config.smtp.port },
    { key: 'smtp.tls.port', host: config.smtp.host, port: config.smtp.tls.port },
    { key: 'pop3.port', host: config.pop3.host, port: config.pop3.port },
    { key: 'pop3.tls.port', host: config.pop3.host, port: config.pop3.tls.port },
    { key: 'web.port', host: config.web.host, port: config.web.port },
  ];
  // Port 0 asks the system for a free port: nothing to check
  return all.filter((listener) => listener.port > 0);
}

/** Resolves when `listener` could be bound right now; otherwise says what to change */
function probe(listener: Listener, source: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', (err) => {
      const where = `${listener.host}:${listener.port}`;
      const code = errnoCode(err);
      const text =
        code === 'EADDRINUSE'
          ? `Port ${where} (${listener.key}) is already in use by another program (another edge-relay, or a mail or web server). Stop it, or set ${listener.key} to a free port in ${source}`
          : code === 'EACCES'
            ? `Port ${where} (${listener.key}) needs privileges this process lacks (ports below 1024 need root or CAP_NET_BIND_SERVICE). Set ${listener.key} to a port above 1023 in ${source}`
            : code === 'EADDRNOTAVAIL'
              ? `Address ${listener.host} (${listener.key.replace(/port$/, 'host')}) is not an address of this machine. Change it in ${source}`
              : `Cannot listen on ${where} (${listener.key}): ${errorMessage(err)}`;
      reject(new RelayError(text, { kind: 'temporary', cause: err }));
    });
    server.listen({ host: listener.host, port: listener.port, exclusive: true }, () =>
      server.close(() => resolve()),
    );
  });
}

export async function checkListeners(config: Config, source: string): Promise<void> {
  for (const listener of listenersOf(config)) await probe(listener, source);
}
