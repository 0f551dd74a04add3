/**
 * The Debian packages from `make deb`: metadata and contents of both, then the
 * amd64 one installed into a scratch root with the real dpkg (maintainer
 * scripts run with DPKG_ROOT, as for image builds): files, user, permissions,
 * enabled unit, `systemd-analyze verify`, an upgrade that keeps the admin's
 * config, remove and purge.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import {
  cpSync,
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  readlinkSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ROOT } from '../support/relay.js';

const VERSION = (
  JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string }
).version;
const deb = (arch: 'amd64' | 'arm64') =>
  path.join(ROOT, 'dist', `edge-relay_${VERSION}_${arch}.deb`);
const UNIT = '/lib/systemd/system/edge-relay.service';
const CONFIG = '/etc/edge-relay/config.json';

/** Temp dirs hold unpacked 120 MB executables: all are removed at the end */
const temps: string[] = [];
const tempDir = (prefix: string) => {
  const dir = mkdtempSync(path.join(tmpdir(), prefix));
  temps.push(dir);
  return dir;
};
after(() => temps.forEach((dir) => rmSync(dir, { recursive: true, force: true })));

function run(
  command: string,
  args: string[],
): { status: number | null; stdout: string; stderr: string } {
  const result = spawnSync(command, args, { encoding: 'utf8', timeout: 120_000 });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

function ok(command: string, args: string[]): string {
  const result = run(command, args);
  assert.equal(
    result.status,
    0,
    `${command} ${args.join(' ')}\n${result.stdout}\n${result.stderr}`,
  );
  return result.stdout + result.stderr;
}

/** An empty root with just what dpkg and useradd need: a dpkg database and the account files */
function scratchRoot(): string {
  const root = tempDir('edge-relay-root-');
  mkdirSync(path.join(root, 'var/lib/dpkg/info'), { recursive: true });
  mkdirSync(path.join(root, 'var/lib/dpkg/updates'));
  mkdirSync(path.join(root, 'etc'));
  for (const [file, line] of [
    ['var/lib/dpkg/status', ''],
    ['var/lib/dpkg/available', ''],
    ['etc/passwd', 'root:x:0:0:root:/root:/bin/bash\n'],
    ['etc/group', 'root:x:0:\n'],
    ['etc/shadow', 'root:*::0:99999:7:::\n'],
    ['etc/gshadow', 'root:*::\n'],
  ] as const) {
    writeFileSync(path.join(root, file), line);
  }
  return root;
}

/** dpkg acting on `root`; the maintainer scripts run outside it and honour DPKG_ROOT */
const dpkg = (root: string, ...args: string[]) =>
  ok('dpkg', [
    `--root=${root}`,
    '--force-script-chrootless',
    '--force-depends',
    '--log=/dev/null',
    ...args,
  ]);

/** Repacks the package under a higher version, so an upgrade can be tested */
function bumpedPackage(): string {
  const dir = tempDir('edge-relay-deb-');
  ok('dpkg-deb', ['-R', deb('amd64'), path.join(dir, 'pkg')]);
  const control = path.join(dir, 'pkg/DEBIAN/control');
  writeFileSync(
    control,
    readFileSync(control, 'utf8').replace(/^Version: .*$/m, `Version: ${VERSION}+upgrade1`),
  );
  const out = path.join(dir, 'next.deb');
  ok('dpkg-deb', ['--root-owner-group', '-Znone', '-b', path.join(dir, 'pkg'), out]);
  return out;
}

const idOf = (root: string, file: 'passwd' | 'group') => {
  const line = readFileSync(path.join(root, 'etc', file), 'utf8')
    .split('\n')
    .find((l) => l.startsWith('edge-relay:'));
  return line === undefined ? undefined : Number(line.split(':')[2]);
};

/** Builds the packages when missing or stale; the lock is shared with binary.test.ts, which may run in parallel */
before(() => {
  mkdirSync(path.join(ROOT, 'dist'), { recursive: true });
  execFileSync('flock', ['dist/.make.lock', 'make', '--no-print-directory', 'deb'], {
    cwd: ROOT,
    stdio: ['ignore', 'ignore', 'inherit'],
    timeout: 600_000,
  });
});

for (const arch of ['amd64', 'arm64'] as const) {
  describe(`the ${arch} package`, () => {
    test('dpkg-deb --info: name, version, architecture, dependencies', () => {
      const info = ok('dpkg-deb', ['--info', deb(arch)]);
      assert.match(info, /^ Package: edge-relay$/m);
      assert.match(info, new RegExp(`^ Version: ${VERSION.replaceAll('.', '\\.')}$`, 'm'));
      assert.match(info, new RegExp(`^ Architecture: ${arch}$`, 'm'));
      assert.match(info, /^ Depends: .*libc6 \(>= 2\.28\).*libstdc\+\+6/m);
      assert.match(info, /^ Installed-Size: \d{5,}$/m, 'size of the executable in KiB');
    });

    test('contents: the executable, the unit, the config, the docs, all root-owned', () => {
      const listing = ok('dpkg-deb', ['--contents', deb(arch)]);
      for (const [mode, file] of [
        ['-rwxr-xr-x', './usr/bin/edge-relay'],
        ['-rw-r--r--', `.${UNIT}`],
        ['-rw-r--r--', `.${CONFIG}`],
        ['-rw-r--r--', './usr/share/doc/edge-relay/copyright'],
        ['-rw-r--r--', './usr/share/doc/edge-relay/install.md'],
      ]) {
        assert.match(
          listing,
          new RegExp(`^${mode} root/root .* ${file!.replaceAll('.', '\\.')}$`, 'm'),
          `${file} in the package`,
        );
      }
    });

    test('control files: the config is a conffile, maintainer scripts are executable and parse', () => {
      const dir = tempDir('edge-relay-control-');
      ok('dpkg-deb', ['--control', deb(arch), dir]);
      assert.equal(readFileSync(path.join(dir, 'conffiles'), 'utf8').trim(), CONFIG);
      for (const script of ['postinst', 'prerm', 'postrm']) {
        assert.equal(statSync(path.join(dir, script)).mode & 0o777, 0o755, `${script} mode`);
        ok('sh', ['-n', path.join(dir, script)]);
      }
    });

    test('the executable is built for the package architecture', () => {
      const dir = tempDir('edge-relay-x-');
      ok('dpkg-deb', ['-x', deb(arch), dir]);
      const header = readFileSync(path.join(dir, 'usr/bin/edge-relay')).subarray(0, 20);
      assert.equal(header.subarray(0, 4).toString('latin1'), '\x7fELF');
      assert.equal(header.readUInt16LE(18), arch === 'amd64' ? 0x3e : 0xb7, 'ELF e_machine');
    });
  });
}

describe('installing the amd64 package into a scratch root', () => {
  const root = scratchRoot();
  const at = (file: string) => path.join(root, file);

  test('install: files land in place, the user and data dir exist, the unit is enabled', () => {
    dpkg(root, '-i', deb('amd64'));
    assert.equal(statSync(at('usr/bin/edge-relay')).mode & 0o777, 0o755);
    assert.ok(existsSync(at(UNIT)));
    const uid = idOf(root, 'passwd');
    const gid = idOf(root, 'group');
    assert.ok(uid !== undefined && uid > 0 && uid < 1000, `a system user: ${uid}`);
    assert.match(
      readFileSync(at('etc/passwd'), 'utf8'),
      /^edge-relay:x:\d+:\d+:[^:]*:\/var\/lib\/edge-relay:\/usr\/sbin\/nologin$/m,
    );
    for (const [file, mode] of [
      ['var/lib/edge-relay', 0o750],
      ['etc/edge-relay', 0o750],
      [CONFIG.slice(1), 0o600],
    ] as const) {
      const st = statSync(at(file));
      assert.equal(st.mode & 0o777, mode, `${file} mode`);
      assert.deepEqual([st.uid, st.gid], [uid, gid], `${file} owned by edge-relay`);
    }
    const link = at('etc/systemd/system/multi-user.target.wants/edge-relay.service');
    assert.ok(lstatSync(link).isSymbolicLink());
    assert.equal(readlinkSync(link), UNIT);
    assert.match(
      ok('dpkg-query', [
        `--admindir=${at('var/lib/dpkg')}`,
        '-W',
        '-f=${Status} ${Version}',
        'edge-relay',
      ]),
      new RegExp(`^install ok installed ${VERSION}`),
    );
  });

  test('the docs are installed from docs/, every page as it is', () => {
    const pages = readdirSync(path.join(ROOT, 'docs'), {
      recursive: true,
      encoding: 'utf8',
    }).filter((name) => name.endsWith('.md'));
    assert.ok(pages.includes('install.md'), 'docs/install.md, which the unit names');
    for (const page of pages) {
      const installed = at(`usr/share/doc/edge-relay/${page}`);
      assert.ok(existsSync(installed), `${page} in /usr/share/doc/edge-relay`);
      assert.equal(
        readFileSync(installed, 'utf8'),
        readFileSync(path.join(ROOT, 'docs', page), 'utf8'),
        `${page} as in docs/`,
      );
    }
  });

  test('the installed executable accepts the installed appliance config', () => {
    const out = ok(at('usr/bin/edge-relay'), ['config', 'check', '--config', at(CONFIG.slice(1))]);
    assert.match(out, /0\.0\.0\.0:25\b/);
  });

  test('systemd-analyze verify passes on the installed unit, and catches a broken one', () => {
    // The systemd package's own units (targets the unit hangs off) stand in for a full system
    for (const name of readdirSync('/lib/systemd/system')) {
      if (!existsSync(at(`lib/systemd/system/${name}`)))
        cpSync(path.join('/lib/systemd/system', name), at(`lib/systemd/system/${name}`), {
          recursive: true,
          verbatimSymlinks: true,
        });
    }
    const good = run('systemd-analyze', ['verify', `--root=${root}`, UNIT]);
    assert.equal(good.status, 0, good.stderr);
    assert.equal(good.stderr.trim(), '', 'no warnings');
    const unit = readFileSync(at(UNIT), 'utf8');
    for (const line of [
      'AmbientCapabilities=CAP_NET_BIND_SERVICE',
      'ProtectSystem=strict',
      'ReadWritePaths=/var/lib/edge-relay /etc/edge-relay',
      'NoNewPrivileges=yes',
      'PrivateTmp=yes',
      'Restart=on-failure',
      'TimeoutStopSec=15s',
      'User=edge-relay',
    ]) {
      assert.ok(unit.split('\n').includes(line), `unit has ${line}`);
    }
    writeFileSync(
      at('lib/systemd/system/broken.service'),
      unit.replace('ExecStart=/usr/bin/edge-relay', 'ExecStart=/usr/bin/edge-relay-missing'),
    );
    assert.notEqual(
      run('systemd-analyze', ['verify', `--root=${root}`, '/lib/systemd/system/broken.service'])
        .status,
      0,
      'verify is not a rubber stamp',
    );
  });

  test('an upgrade keeps the config the admin changed and the data', () => {
    const changed = `${JSON.stringify({ hostname: 'mail-gw.office.lan', dataDir: '/var/lib/edge-relay', smtp: { port: 25 } }, null, 2)}\n`;
    writeFileSync(at(CONFIG.slice(1)), changed);
    writeFileSync(at('var/lib/edge-relay/admin.json'), '{}\n');
    dpkg(root, '-i', bumpedPackage());
    assert.equal(readFileSync(at(CONFIG.slice(1)), 'utf8'), changed);
    assert.ok(existsSync(at('var/lib/edge-relay/admin.json')));
    assert.match(
      ok('dpkg-query', [`--admindir=${at('var/lib/dpkg')}`, '-W', '-f=${Version}', 'edge-relay']),
      /\+upgrade1$/,
    );
  });

  test('remove: the program and unit go, the config, data and user stay, the unit is disabled', () => {
    dpkg(root, '--remove', 'edge-relay');
    assert.ok(!existsSync(at('usr/bin/edge-relay')));
    assert.ok(!existsSync(at(UNIT)));
    assert.ok(!existsSync(at('etc/systemd/system/multi-user.target.wants/edge-relay.service')));
    assert.ok(existsSync(at(CONFIG.slice(1))));
    assert.ok(existsSync(at('var/lib/edge-relay/admin.json')));
    assert.notEqual(idOf(root, 'passwd'), undefined);
  });

  test('purge: the config and data dirs are gone, the system user stays', () => {
    dpkg(root, '--purge', 'edge-relay');
    assert.ok(!existsSync(at('etc/edge-relay')));
    assert.ok(!existsSync(at('var/lib/edge-relay')));
    assert.notEqual(idOf(root, 'passwd'), undefined);
    assert.equal(
      run('dpkg-query', [`--admindir=${at('var/lib/dpkg')}`, '-W', 'edge-relay']).status,
      1,
      'dpkg forgot the package',
    );
  });
});
