import { readFileSync } from 'node:fs';

/**
 * package.json holds the version. The single executable has no package.json
 * beside it, so scripts/build-binary.sh writes the version in as this
 * constant; run from a checkout (bin/edge-relay, tests) it is read from the file.
 */
declare const EDGE_RELAY_VERSION: string | undefined;

export const VERSION: string =
  typeof EDGE_RELAY_VERSION === 'string' ? EDGE_RELAY_VERSION : versionFromPackageJson();

function versionFromPackageJson(): string {
  // src/version.ts and build/version.js both sit one level below package.json
  const file = new URL('../package.json', import.meta.url);
  const { version } = JSON.parse(readFileSync(file, 'utf8')) as { version?: unknown };
  if (typeof version !== 'string') throw new Error(`No version in ${file.pathname}`);
  return version;
}
