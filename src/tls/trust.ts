/**
 * The certificates we trust when we are the client (the upstream, MTA-STS
 * policy hosts, OAuth2 token endpoints): Node's bundled store, plus the
 * admin's extra CA file (`delivery.tls.caFile`) when one is set.
 */
import { readFileSync } from 'node:fs';
import tls from 'node:tls';

export function trustStore(caFile: string | undefined): string[] | undefined {
  if (!caFile) return undefined;
  return [...tls.rootCertificates, readFileSync(caFile, 'utf8')];
}
