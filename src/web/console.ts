/**
 * The web console: the admin's sign-in (password, setup token, API tokens)
 * and the web server. It is given the relay's services, built by the
 * composition root; it builds nothing the relay needs to run.
 */
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { AdminCredentials } from '../web-auth/credentials.js';
import { SetupToken } from '../web-auth/setup-token.js';
import { ApiTokens } from '../web-auth/tokens.js';
import { loadOrCreateCertificate } from '../util/tls-cert.js';
import type { WebServices } from './context.js';
import { startWeb } from './server.js';

/** What the console is given; the sign-in it builds itself */
export type WebConsoleServices = Omit<WebServices, 'credentials' | 'setup' | 'tokens' | 'dataDir'>;

export interface WebConsole {
  web: AddressInfo;
  stop(): Promise<void>;
}

export async function startWebConsole(services: WebConsoleServices): Promise<WebConsole> {
  const { store, log } = services;
  const { web: webConfig, hostname, dataDir: configuredDir } = store.config;
  const dataDir = path.resolve(configuredDir);
  const credentials = new AdminCredentials(dataDir);
  const setup = new SetupToken(dataDir);
  if (!(await credentials.isSet())) {
    const setupToken = await setup.issue();
    log.warn(
      { setupToken, file: setup.file },
      'Admin password not set: open the web page and enter this setup token (or run "edge-relay admin password --password-stdin")',
    );
  }
  const tls = webConfig.tls.enabled
    ? await loadOrCreateCertificate({
        dataDir,
        name: 'web',
        certFile: webConfig.tls.certFile,
        keyFile: webConfig.tls.keyFile,
        hostname,
        log,
      })
    : undefined;
  const web = await startWeb({
    ...services,
    host: webConfig.host,
    port: webConfig.port,
    ...(tls ? { tls } : {}),
    credentials,
    tokens: new ApiTokens(dataDir),
    setup,
    dataDir,
  });
  return { web: web.address, stop: () => web.stop() };
}
