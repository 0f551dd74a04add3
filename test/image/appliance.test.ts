/**
 * The root file system of the image, copied out of the ext4 partition with
 * debugfs and entered with chroot under qemu user-mode emulation: our package
 * is installed and its units enabled and valid; the installed arm64 relay
 * starts, as its service user, with the appliance config (moved to loopback
 * and free ports) and relays a message to a real upstream over verified
 * STARTTLS; the welcome step turns the relay's own log into the console text.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import {
  copyFileSync,
  existsSync,
  lstatSync,
  mkdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import path from 'node:path';
import { after, before, describe, test, type TestContext } from 'node:test';
import { makeCerts } from '../support/certs.js';
import { ROOT, serveUntilRunning } from '../support/relay.js';
import { assertRelaysScanAndStops } from '../support/served-relay.js';
import { startUpstream, type Upstream } from '../support/upstream.js';
import { SCRATCH, ensureImage, extractPartition, ok } from './image-files.js';

const CHROOT = path.join(ROOT, 'scripts/image/chroot.sh');
const WANTS = 'etc/systemd/system/multi-user.target.wants';
const UNITS = [
  'edge-relay.service',
  'edge-relay-welcome.service',
  'edge-relay-grow-root.service',
  'edge-relay-boot-settings.service',
];

const MESSAGE = [
  'From: scanner@office.test',
  'To: boss@example.com',
  'Subject: Scan from the Raspberry Pi image',
  'Date: Fri, 27 Nov 2026 10:00:00 +0000',
  'Message-ID: <scan-8@scanner.office.test>',
  '',
  'Page 1 of 1',
  '',
].join('\r\n');

const mountsUnder = (dir: string) =>
  ok('findmnt', ['-rn', '-o', 'TARGET'])
    .split('\n')
    .filter((t) => t === dir || t.startsWith(`${dir}/`));

describe('the appliance root, under emulation', { timeout: 1_800_000 }, () => {
  const root = path.join(SCRATCH, 'root');
  const at = (file: string) => path.join(root, file);
  let upstream: Upstream;
  let relayLog = '';

  before(async () => {
    ensureImage();
    const { file } = extractPartition(1, 'root.ext4');
    rmSync(root, { recursive: true, force: true });
    mkdirSync(root, { recursive: true });
    // rdump keeps modes, owners and symlinks; device nodes come from the bind-mounted /dev
    ok('debugfs', ['-R', `rdump / ${root}`, file]);
    rmSync(file);
    upstream = await startUpstream({ requireTls: true });
  });
  after(async () => {
    await upstream?.close();
    assert.deepEqual(mountsUnder(root), [], 'chroot mounts cleaned up');
    rmSync(SCRATCH, { recursive: true, force: true });
  });

  test("our package and the image's units are installed and enabled, with D-Bus and the tools to grow the root", () => {
    const status = readFileSync(at('var/lib/dpkg/status'), 'utf8');
    for (const pkg of [
      'edge-relay',
      'dbus',
      'fdisk',
      'e2fsprogs',
      'systemd-timesyncd',
      'systemd-zram-generator',
    ]) {
      assert.match(
        status,
        new RegExp(`^Package: ${pkg}\nStatus: install ok installed$`, 'm'),
        `${pkg} installed`,
      );
    }
    assert.ok(
      lstatSync(
        at('etc/systemd/system/sysinit.target.wants/systemd-time-wait-sync.service'),
      ).isSymbolicLink(),
      'time-sync.target waits for NTP',
    );
    assert.match(
      readFileSync(
        at('etc/systemd/system/systemd-time-wait-sync.service.d/edge-relay.conf'),
        'utf8',
      ),
      /^TimeoutStartSec=30s$/m,
      'but not for ever',
    );
    const relayUnit = readFileSync(at('lib/systemd/system/edge-relay.service'), 'utf8');
    assert.match(relayUnit, /^After=.*\btime-sync\.target\b/m);
    assert.match(relayUnit, /^Wants=.*\btime-sync\.target\b/m);
    assert.match(
      readFileSync(at('lib/systemd/system/edge-relay-welcome.service'), 'utf8'),
      /^PartOf=edge-relay\.service$/m,
      'restarted with the relay',
    );
    for (const unit of UNITS) {
      const link = at(`${WANTS}/${unit}`);
      assert.ok(lstatSync(link).isSymbolicLink(), `${unit} enabled`);
      assert.ok(
        existsSync(at(readlinkSync(link).slice(1))),
        `${unit} link points at an installed unit`,
      );
    }
    assert.equal(statSync(at('usr/lib/edge-relay/welcome')).mode & 0o777, 0o755);
    assert.equal(
      readFileSync(at('etc/machine-id'), 'utf8'),
      '',
      'each box makes its own machine id on first boot',
    );
  });

  test("systemd-analyze verify passes on the relay unit and the image's units, and catches a broken one", () => {
    for (const unit of UNITS) {
      ok('systemd-analyze', ['verify', `--root=${root}`, `/lib/systemd/system/${unit}`]);
    }
    const unit = readFileSync(at('lib/systemd/system/edge-relay-welcome.service'), 'utf8');
    writeFileSync(
      at('lib/systemd/system/broken-welcome.service'),
      unit.replace('/usr/lib/edge-relay/welcome', '/usr/lib/edge-relay/missing'),
    );
    try {
      const broken = spawnSync(
        'systemd-analyze',
        ['verify', `--root=${root}`, '/lib/systemd/system/broken-welcome.service'],
        { stdio: 'ignore', timeout: 60_000 },
      );
      assert.notEqual(broken.status, 0, 'verify is not a rubber stamp');
    } finally {
      rmSync(at('lib/systemd/system/broken-welcome.service'));
    }
  });

  test('the installed relay starts with the appliance config as its service user and relays a message', async (t: TestContext) => {
    const appliance = JSON.parse(readFileSync(at('etc/edge-relay/config.json'), 'utf8')) as Record<
      string,
      unknown
    >;
    assert.equal(appliance.dataDir, '/var/lib/edge-relay');
    // Same config, but on loopback and free ports: a test never binds outside 127.0.0.0/8
    copyFileSync(makeCerts().caFile, at('tmp/test-ca.crt'));
    const config = {
      ...appliance,
      smtp: { host: '127.0.0.1', port: 0 },
      pop3: { host: '127.0.0.1', port: 0 },
      web: { host: '127.0.0.1', port: 0 },
      delivery: {
        mode: 'smarthost',
        smarthost: { host: '127.0.0.1', port: upstream.port, security: 'starttls' },
        tls: { verify: true, caFile: '/tmp/test-ca.crt' },
      },
    };
    writeFileSync(at('tmp/test-config.json'), JSON.stringify(config));
    const started = performance.now();
    const relay = await serveUntilRunning(
      [
        'bash',
        CHROOT,
        root,
        '/usr/bin/setpriv',
        '--reuid=edge-relay',
        '--regid=edge-relay',
        '--init-groups',
        '/usr/bin/edge-relay',
        'serve',
        '--config',
        '/tmp/test-config.json',
      ],
      { timeoutMs: 120_000 },
    );
    try {
      t.diagnostic(`listening after ${Math.round(performance.now() - started)} ms under emulation`);
      assert.equal(relay.running.dataDir, '/var/lib/edge-relay');
      await assertRelaysScanAndStops(relay, upstream, MESSAGE, { timeoutMs: 60_000 });
      relayLog = relay.output();
    } finally {
      relay.child.kill('SIGKILL');
    }
    assert.deepEqual(mountsUnder(root), [], 'chroot.sh unmounted proc, sys and dev');
  });

  test("the welcome step shows the web address and the setup token from the relay's log", () => {
    assert.ok(relayLog, 'the relay ran in the previous test');
    const token = readFileSync(at('var/lib/edge-relay/setup-token'), 'utf8').trim();
    assert.match(token, /^[0-9a-f]{24}$/);
    assert.ok(relayLog.includes(`"setupToken":"${token}"`), 'the relay logged the token it wrote');
    const webPort = /"web":"127\.0\.0\.1:(\d+)"/.exec(relayLog)?.[1];
    assert.ok(webPort);
    writeFileSync(at('tmp/relay.log'), relayLog);
    const shown = ok('bash', [
      CHROOT,
      root,
      '/usr/lib/edge-relay/welcome',
      '--log',
      '/tmp/relay.log',
    ]);
    assert.match(shown, new RegExp(`Setup token: +${token}$`, 'm'));
    assert.match(
      shown,
      new RegExp(
        `Admin web page: +http://\\S+:${webPort}/ +\\(or http://edge-relay:${webPort}/\\)`,
      ),
    );
    const issue = readFileSync(at('etc/issue.d/edge-relay.issue'), 'utf8');
    assert.ok(
      issue.includes(`http://\\4:${webPort}/`),
      `the login screen fills in the address: ${issue}`,
    );
    assert.ok(issue.includes(token));
    const stat = statSync(at('etc/issue.d/edge-relay.issue'));
    assert.equal(stat.mode & 0o777, 0o600, 'the token is for root (and the screen) only');
    assert.equal(stat.uid, 0);
  });

  test('edge-relay.txt on the boot partition sets the hostname, a static address, DNS and NTP; bad values are skipped', () => {
    const etc = (file: string) => readFileSync(at(`etc/${file}`), 'utf8');
    const saved = ['hostname', 'hosts', 'network/interfaces.d/eth0'].map(
      (file) => [file, etc(file)] as const,
    );
    try {
      writeFileSync(
        at('tmp/edge-relay.txt'),
        'hostname=printer-gw\r\naddress=192.168.7.20/24\r\ngateway=192.168.7.1\r\ndns=192.168.7.1, 9.9.9.9\r\nntp=ntp.example.lan\r\n',
      );
      ok('bash', [CHROOT, root, '/usr/lib/edge-relay/boot-settings', '/tmp/edge-relay.txt', '/']);
      assert.equal(etc('hostname'), 'printer-gw\n');
      assert.match(etc('hosts'), /^127\.0\.1\.1\tprinter-gw$/m);
      assert.equal(
        etc('network/interfaces.d/eth0'),
        'auto eth0\nallow-hotplug eth0\niface eth0 inet static\n    address 192.168.7.20/24\n    gateway 192.168.7.1\niface eth0 inet6 auto\n',
      );
      assert.equal(etc('resolv.conf'), 'nameserver 192.168.7.1\nnameserver 9.9.9.9\n');
      assert.match(etc('systemd/timesyncd.conf.d/edge-relay.conf'), /^NTP=ntp\.example\.lan$/m);
      writeFileSync(
        at('tmp/edge-relay.txt'),
        'hostname=-bad\naddress=10.0.0.300/24\n#hostname=commented\n',
      );
      const said = ok('bash', [
        CHROOT,
        root,
        '/usr/lib/edge-relay/boot-settings',
        '/tmp/edge-relay.txt',
        '/',
      ]);
      assert.match(said, /hostname "-bad" is not a name/);
      assert.match(said, /address "10\.0\.0\.300\/24" is neither dhcp nor/);
      assert.equal(etc('hostname'), 'printer-gw\n', 'a bad value leaves the setting alone');
      writeFileSync(at('tmp/edge-relay.txt'), 'address=dhcp\n');
      ok('bash', [CHROOT, root, '/usr/lib/edge-relay/boot-settings', '/tmp/edge-relay.txt', '/']);
      assert.match(etc('network/interfaces.d/eth0'), /^iface eth0 inet dhcp$/m);
    } finally {
      for (const [file, text] of saved) writeFileSync(at(`etc/${file}`), text);
      rmSync(at('etc/systemd/timesyncd.conf.d/edge-relay.conf'), { force: true });
      writeFileSync(at('etc/resolv.conf'), '');
    }
  });
});
