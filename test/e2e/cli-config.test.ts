/**
 * The CLI finds the configuration the service uses: --config, else
 * $EDGE_RELAY_CONFIG, else /etc/edge-relay/config.json; it says which data
 * folder it acted on, and run as root on the service's folder it writes as
 * the service's user, so the service can still read what it wrote.
 */
import assert from 'node:assert/strict';
import {
  chmodSync,
  chownSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { CONFIG_ENV, SERVICE_CONFIG_FILE, locateConfig } from '../../src/cli/context.js';
import { smtplibSend } from '../support/clients.js';
import { runCli, launchRelay, testConfig, type RunningRelay } from '../support/relay.js';

test('where the configuration comes from, in order', () => {
  const none = () => false;
  assert.equal(locateConfig('/x.json', { [CONFIG_ENV]: '/y.json' }, () => true).file, '/x.json');
  assert.equal(locateConfig(undefined, { [CONFIG_ENV]: '/y.json' }, () => true).file, '/y.json');
  assert.equal(
    locateConfig(undefined, {}, (file) => file === SERVICE_CONFIG_FILE).file,
    SERVICE_CONFIG_FILE,
  );
  const defaults = locateConfig(undefined, {}, none);
  assert.equal(defaults.file, undefined);
  assert.match(defaults.origin, /embedded defaults/);
});

describe('a command without --config on a running relay', () => {
  let relay: RunningRelay;
  before(async () => {
    relay = await launchRelay();
  });
  after(() => relay.stop());

  test('finds the queue through EDGE_RELAY_CONFIG and names the data folder', async () => {
    await smtplibSend(
      relay.smtpPort,
      'scanner@office.test',
      ['boss@example.com'],
      'Subject: waits\r\n\r\nno upstream yet\r\n',
    );
    const env = { ...process.env, [CONFIG_ENV]: relay.configFile };
    const listed = await runCli(['queue', 'list', '--json'], { cwd: tmpdir(), env });
    assert.equal(listed.code, 0, listed.stderr);
    const items = JSON.parse(listed.stdout) as { from: string }[];
    assert.deepEqual(
      items.map((item) => item.from),
      ['scanner@office.test'],
      'stdout is the JSON alone',
    );
    assert.match(
      listed.stderr,
      new RegExp(`Using ${relay.configFile} \\(${CONFIG_ENV}\\); data folder ${relay.dataDir}`),
    );
  });
});

describe(
  'root acting on the service folder',
  { skip: process.getuid?.() !== 0 && 'needs root to change owners' },
  () => {
    const NOBODY = 65534;
    let dir: string;
    let configFile: string;
    before(() => {
      dir = mkdtempSync(path.join(tmpdir(), 'edge-relay-owner-'));
      chmodSync(dir, 0o755);
      const dataDir = path.join(dir, 'data');
      mkdirSync(dataDir);
      chownSync(dataDir, NOBODY, NOBODY);
      configFile = path.join(dir, 'config.json');
      writeFileSync(configFile, JSON.stringify(testConfig(dataDir)));
    });

    test('writes as the folder owner, so the service can read it', async () => {
      const added = await runCli(
        ['mailbox', 'add', 'scans', '--password-stdin', '--config', configFile],
        { stdin: 'a-long-password\n', cwd: dir },
      );
      assert.equal(added.code, 0, added.stderr);
      for (const made of [
        path.join(dir, 'data', 'mailboxes'),
        path.join(dir, 'data', 'mailboxes', 'scans'),
      ]) {
        assert.equal(statSync(made).uid, NOBODY, `${made} belongs to the service's user`);
      }
    });
  },
);

test('a port in use is named with its setting, before anything is created', async () => {
  const busy = net.createServer();
  await new Promise<void>((resolve) => busy.listen(0, '127.0.0.1', resolve));
  const port = (busy.address() as net.AddressInfo).port;
  try {
    const dir = mkdtempSync(path.join(tmpdir(), 'edge-relay-busy-'));
    const dataDir = path.join(dir, 'data');
    const configFile = path.join(dir, 'config.json');
    writeFileSync(configFile, JSON.stringify(testConfig(dataDir, { pop3: { port } })));
    const served = await runCli(['serve', '--config', configFile], { cwd: dir });
    assert.equal(served.code, 1, 'a temporary failure: systemd may try again');
    assert.match(
      served.stderr,
      new RegExp(
        `Port 127\\.0\\.0\\.1:${port} \\(pop3\\.port\\) is already in use .* set pop3\\.port to a free port in ${configFile}`,
      ),
    );
    assert.equal(
      existsSync(dataDir),
      false,
      'no data folder, pid file or postmaster mailbox was made',
    );
  } finally {
    busy.close();
  }
});
