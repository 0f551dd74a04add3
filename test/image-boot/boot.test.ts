/**
 * The appliance image booted under full emulation (make image-boot-test,
 * root; slow, so not part of make test). A copy of dist/edge-relay-arm64.img,
 * 1 GiB larger as a real card is, is the box; the host reaches it only through
 * forwards on 127.0.0.1, and it reaches only the host's loopback (QEMU's
 * 10.0.2.2): the test upstream and a test time server. What the test does is
 * what the person who plugs in the box does: read the web address and setup
 * token from the screen, choose the admin password, set the smarthost on the
 * page, send mail from a device, read a bounce over POP3, reboot, pull the
 * plug while mail flows, install a newer package. Between two boots the root
 * password is set, as the owner does at the screen, so the test can log in
 * on the serial console and look inside.
 *
 * What it cannot prove: the Raspberry Pi's own boot stage (GPU firmware,
 * config.txt, the Pi's device trees), which needs the hardware.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test, type TestContext } from 'node:test';
import { setupAdmin, WebClient } from '../support/browser.js';
import { makeCerts, serverCertFor } from '../support/certs.js';
import { python, smtplibSend } from '../support/clients.js';
import { freePort } from '../support/ports.js';
import { ROOT } from '../support/relay.js';
import { startUpstream, type Upstream } from '../support/upstream.js';
import { IMAGE, ensureImage, ok } from '../image/image-files.js';
import { eventually } from '../support/wait.js';
import { Card } from './card.js';
import { startSntp, type SntpServer } from './sntp.js';
import { Vm, bootFilesOf, secondsToSmtp, type BootFiles } from './vm.js';

const SCRATCH = path.join(ROOT, '.cache/image-boot-test');
/** One boot under TCG on a busy 2-core machine, with room to spare */
const BOOT_MS = 600_000;
const HOST_FROM_GUEST = '10.0.2.2';
const ADMIN_PASSWORD = 'plugged in and set up';
const ROOT_PASSWORD = 'owner-at-the-screen-1';
const POSTMASTER_PASSWORD = 'postmaster-reads-1';
const CA_ON_BOOT = '/boot/firmware/test-ca.crt';
const NEWER_DEB = 'edge-relay-newer.deb';
const JOURNAL = String.raw`(?:\[ *[0-9.]+\] welcome\[\d+\]:)?`;

const mail = (id: string, to: string, subject: string) =>
  [
    `From: scanner@office.test`,
    `To: ${to}`,
    `Subject: ${subject}`,
    `Message-ID: <${id}@scanner.office.test>`,
    'Date: Sat, 05 Dec 2026 10:00:00 +0000',
    '',
    `${subject}: page 1 of 1`,
    '',
  ].join('\r\n');

/** POP3 STAT and the first message's text, with Python's poplib */
async function pop3(
  port: number,
  user: string,
  password: string,
): Promise<{ count: number; first: string }> {
  const code = `import poplib, sys
p = poplib.POP3('127.0.0.1', int(sys.argv[1]), timeout=60)
p.user(sys.argv[2]); p.pass_(sys.argv[3])
count = p.stat()[0]
print(count)
if count: print(b'\\n'.join(p.retr(1)[1]).decode('latin1'))
p.quit()`;
  const result = await python(code, [String(port), user, password]);
  assert.equal(result.code, 0, result.stderr);
  const [count, ...rest] = result.stdout.split('\n');
  return { count: Number(count), first: rest.join('\n') };
}

interface QueueEntry {
  id: string;
  recipients: { address: string; status: string }[];
}

describe('the appliance image, booted under emulation', { timeout: 3_600_000 }, () => {
  let card: Card;
  let files: BootFiles;
  let upstream: Upstream;
  let sntp: SntpServer;
  let vm: Vm | undefined;
  const ports = { smtp: 0, pop3: 0, web: 0 };
  const figures: Record<string, string> = {};
  const web = () => `http://127.0.0.1:${ports.web}`;
  let newerVersion = '';
  /** Until the power cut, every other flowing message is deferred: the cut finds some in the queue, some on their way out */
  let holdOddFlow = true;

  /** Powers the box on (off first, should an earlier test have left it running) */
  const boot = async (): Promise<Vm> => {
    await vm?.powerOff();
    vm = new Vm(
      card.file,
      files,
      [
        { guest: 25, host: ports.smtp },
        { guest: 110, host: ports.pop3 },
        { guest: 80, host: ports.web },
      ],
      path.join(SCRATCH, 'monitor.sock'),
    );
    return vm;
  };
  const signIn = async (): Promise<WebClient> => {
    const client = new WebClient(web());
    await client.get('/login');
    const signedIn = await client.post('/login', { password: ADMIN_PASSWORD });
    assert.equal(
      signedIn.location,
      '/',
      `signed in: ${signedIn.status} ${signedIn.text.slice(0, 300)}`,
    );
    return client;
  };
  const api = async <T>(client: WebClient, route: string): Promise<T> => {
    const response = await client.get(route);
    assert.equal(response.status, 200, `${route}: ${response.text.slice(0, 300)}`);
    return JSON.parse(response.text) as T;
  };
  /** The welcome text's token (or "set") printed after console index `from` */
  const welcome = async (box: Vm, from = 0) => {
    // Through the journal to the console: each line may carry "[ 71.17] welcome[472]:"
    const shown = await box.waitFor(
      new RegExp(
        `edge-relay mail relay is running\n${JOURNAL} +Admin web page: +(\\S+) +\\(or (\\S+)\\)\n${JOURNAL} +(?:Setup token: +([0-9a-f]{24})|Admin password: +set)`,
      ),
      BOOT_MS,
      from,
    );
    return { address: shown[1], byName: shown[2], token: shown[3] };
  };

  before(async () => {
    ensureImage();
    rmSync(SCRATCH, { recursive: true, force: true });
    mkdirSync(SCRATCH, { recursive: true });
    figures['image size'] =
      `${Math.round(statSync(IMAGE).size / 2 ** 20)} MiB (${Math.round((statSync(IMAGE).blocks * 512) / 2 ** 20)} MiB on disk)`;
    card = new Card(path.join(SCRATCH, 'card.img'), IMAGE, 1024);
    files = bootFilesOf(card.file, card.bootOffset, SCRATCH);
    ports.smtp = await freePort();
    ports.pop3 = await freePort();
    ports.web = await freePort();
    upstream = await startUpstream({
      requireTls: true,
      extra: serverCertFor(`IP:${HOST_FROM_GUEST}`),
      rcptReply: (address) =>
        address === 'nobody@example.com'
          ? [550, '5.1.1 <nobody@example.com>: No such user here']
          : undefined,
      dataReply: (_attempt, message) =>
        message.to.includes('stuck@example.com') ||
        (holdOddFlow && /^Subject: flow \d*[13579]\r$/m.test(message.raw.toString()))
          ? [451, '4.3.0 Try again later']
          : undefined,
    });
    sntp = await startSntp();
    // The settings file on the boot partition, as an owner edits it on a PC
    card.writeToBoot('edge-relay.txt', 'hostname=relay-under-test\r\nntp=10.0.2.2\r\n', SCRATCH);
    // Trust in the test CA (the page has no field for an extra CA: set in the file)
    card.copyToBoot(makeCerts().caFile, path.basename(CA_ON_BOOT));
    const config = JSON.parse(card.readRoot('/etc/edge-relay/config.json')) as {
      delivery?: Record<string, unknown>;
    };
    config.delivery = { ...config.delivery, tls: { verify: true, caFile: CA_ON_BOOT } };
    card.writeRoot(
      '/etc/edge-relay/config.json',
      `${JSON.stringify(config, null, 2)}\n`,
      { ...card.idsOf('edge-relay'), mode: 0o600 },
      SCRATCH,
    );
    // A newer package of the same relay, for the upgrade on the box
    const version = (
      JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string }
    ).version;
    newerVersion = `${version}+boottest1`;
    const unpacked = path.join(SCRATCH, 'newer-deb');
    ok('dpkg-deb', ['-R', path.join(ROOT, `dist/edge-relay_${version}_arm64.deb`), unpacked]);
    const control = path.join(unpacked, 'DEBIAN/control');
    execFileSync('sed', ['-i', `s/^Version: .*/Version: ${newerVersion}/`, control]);
    ok(
      'dpkg-deb',
      ['--root-owner-group', '-Zgzip', '-z1', '-b', unpacked, path.join(SCRATCH, NEWER_DEB)],
      { timeoutMs: 600_000 },
    );
    rmSync(unpacked, { recursive: true });
    card.copyToBoot(path.join(SCRATCH, NEWER_DEB), NEWER_DEB);
  });

  after(async () => {
    await vm?.powerOff();
    await upstream?.close();
    await sntp?.close();
    console.log(
      `\nimage-boot-test figures:\n${Object.entries(figures)
        .map(([name, value]) => `  ${name}: ${value}`)
        .join('\n')}\n`,
    );
    rmSync(SCRATCH, { recursive: true, force: true });
  });

  test('first boot: the root is checked and grown to the card, SMTP answers, the screen shows the address and token', async (t: TestContext) => {
    const box = await boot();
    const seconds = await secondsToSmtp(box, ports.smtp, BOOT_MS);
    figures['power-on to SMTP, first boot'] = `${seconds.toFixed(1)} s`;
    t.diagnostic(`SMTP answered ${seconds.toFixed(1)} s after power-on`);
    const shown = await welcome(box);
    assert.equal(shown.address, 'http://10.0.2.15/', 'the DHCP address QEMU gave the box');
    assert.equal(shown.byName, 'http://relay-under-test/', 'the hostname from edge-relay.txt');
    assert.ok(shown.token, 'a setup token while no admin password is set');
    // Booleans: a failed match would print the whole console
    assert.ok(!/fsck not present/.test(box.console), 'the initrd has fsck');
    assert.ok(
      /(EDGE_ROOT|\/dev\/vda2): clean, /.test(box.console),
      'the initrd checked the root before mounting it',
    );
    const grown = /grow-root: root partition \/dev\/vda2 grown from (\d+) MiB to (\d+) MiB/.exec(
      box.console,
    );
    assert.ok(grown, 'the root partition grew');
    assert.ok(
      Number(grown[2]) - Number(grown[1]) >= 1000,
      `grew by the card's extra 1 GiB: ${grown[0]}`,
    );
  });

  test('no passwordless root on the serial console, though root has no password yet', async () => {
    const said = await vm!.login('root', '');
    assert.match(said, /Login incorrect/);
  });

  test('the power button shuts the box down cleanly (logind over D-Bus)', async () => {
    const box = vm!;
    await box.pressPowerButton();
    await Promise.race([
      box.exited,
      new Promise((_, reject) =>
        setTimeout(
          () => reject(new Error(`No power-off within 300 s:\n${box.console.slice(-3000)}`)),
          300_000,
        ),
      ),
    ]);
    assert.ok(/reboot: Power down/.test(box.console), 'powered down');
    vm = undefined;
    // The owner sets a root password at the screen (here: in the shut-down card)
    const hash = ok('openssl', ['passwd', '-6', ROOT_PASSWORD]).trim();
    const shadow = card.readRoot('/etc/shadow').replace(/^root:[^:]*:/m, `root:${hash}:`);
    card.writeRoot(
      '/etc/shadow',
      shadow,
      { uid: 0, gid: card.groupId('shadow'), mode: 0o640 },
      SCRATCH,
    );
  });

  test("second boot: the token on the screen is the relay's, root-only, and follows a restart; the clock is synced", async () => {
    const box = await boot();
    await secondsToSmtp(box, ports.smtp, BOOT_MS);
    const first = await welcome(box);
    assert.ok(first.token);
    await box.login('root', ROOT_PASSWORD);
    assert.equal((await box.must('cat /var/lib/edge-relay/setup-token')).trim(), first.token);
    const issue = await box.must(
      'stat -c "%a %U" /etc/issue.d/edge-relay.issue; cat /etc/issue.d/edge-relay.issue',
    );
    assert.match(issue, /^600 root\n/);
    assert.ok(issue.includes(first.token!), issue);
    const from = box.console.length;
    await box.must('systemctl restart edge-relay.service');
    const next = await welcome(box, from);
    assert.ok(next.token && next.token !== first.token, 'a new token after the restart');
    assert.equal((await box.must('cat /var/lib/edge-relay/setup-token')).trim(), next.token);
    // The welcome step writes the login screen's text just after printing to the console
    await eventually(
      'the new token on the login screen',
      async () =>
        (await box.must('cat /etc/issue.d/edge-relay.issue').catch(() => '')).includes(next.token!),
      { timeoutMs: 60_000, everyMs: 2_000 },
    );
    assert.equal(
      (await box.must('timedatectl show -p NTPSynchronized --value')).trim(),
      'yes',
      'timedatectl works (D-Bus) and the clock is synced',
    );
    assert.ok(sntp.answered > 0, 'the box asked the time server from edge-relay.txt');
    assert.match(
      await box.must('systemctl is-active systemd-logind dbus systemd-timesyncd'),
      /^active\nactive\nactive\n$/,
    );
    assert.match(await box.must('swapon --show=NAME --noheadings'), /zram0/);
    assert.match(await box.must('findmnt -no OPTIONS /'), /noatime/);
    assert.match(await box.must('cat /etc/apt/sources.list'), /bookworm-security/);
    assert.match(
      await box.must('cat /run/initramfs/fsck.log'),
      /EDGE_ROOT: (clean|recovering journal)/,
      'fsck ran in the initrd',
    );
  });

  test("the admin password through the page with the token, then the smarthost; a device's mail goes out over verified STARTTLS", async () => {
    const shown = /Setup token: +([0-9a-f]{24})/g;
    const tokens = [...vm!.console.matchAll(shown)].map((m) => m[1]);
    const onScreen = tokens.at(-1);
    const relays = (
      await vm!.must(
        'cat /var/lib/edge-relay/setup-token; journalctl -u edge-relay.service -u edge-relay-welcome.service --no-pager -o short-monotonic | tail -n 40',
      )
    ).split('\n');
    assert.equal(
      relays[0],
      onScreen,
      `the token on the screen is the relay's:\n${relays.join('\n')}`,
    );
    const admin = await setupAdmin(web(), onScreen!, ADMIN_PASSWORD);
    const saved = await admin.post('/settings', {
      mode: 'smarthost',
      host: HOST_FROM_GUEST,
      port: String(upstream.port),
      security: 'starttls',
      verify: 'on',
      _checkboxes: 'verify',
    });
    assert.ok(
      saved.status === 303 || /Saved/.test(saved.text),
      `settings saved: ${saved.status} ${saved.text.slice(0, 300)}`,
    );
    const { persistent, config: settings } = await api<{
      persistent: boolean;
      config: {
        delivery: {
          mode: string;
          smarthost: { host: string; port: number };
          tls: { verify: boolean };
        };
      };
    }>(admin, '/api/settings');
    assert.equal(persistent, true, 'saved in /etc/edge-relay/config.json');
    assert.equal(settings.delivery.mode, 'smarthost');
    assert.equal(settings.delivery.smarthost.host, HOST_FROM_GUEST);
    assert.equal(settings.delivery.tls.verify, true);
    const password = await admin.post('/mailboxes/password', {
      name: 'postmaster',
      password: POSTMASTER_PASSWORD,
    });
    assert.ok(password.status < 400, password.text.slice(0, 300));
    const message = mail('first', 'boss@example.com', 'Scan through the emulated Pi');
    assert.match(
      await smtplibSend(ports.smtp, 'scanner@office.test', ['boss@example.com'], message),
      /^250 /,
    );
    const [delivered] = await upstream.waitFor(1, 300_000);
    assert.equal(
      delivered?.secure,
      true,
      'over TLS, with the certificate verified against the test CA',
    );
    const raw = delivered?.raw.toString() ?? '';
    assert.equal(raw.slice(raw.indexOf('From: scanner')), message);
  });

  test('a bounce for a rejected recipient is in the postmaster mailbox over POP3', async () => {
    assert.match(
      await smtplibSend(
        ports.smtp,
        'scanner@office.test',
        ['nobody@example.com'],
        mail('bounced', 'nobody@example.com', 'Scan for nobody'),
      ),
      /^250 /,
    );
    const mailbox = await eventually(
      'a bounce in the postmaster mailbox',
      async () => {
        const seen = await pop3(ports.pop3, 'postmaster', POSTMASTER_PASSWORD).catch(
          () => undefined,
        );
        return seen && seen.count > 0 && seen;
      },
      { timeoutMs: 300_000, everyMs: 2_000 },
    );
    assert.match(mailbox.first, /nobody@example\.com/);
    assert.match(mailbox.first, /550/);
  });

  test('a reboot keeps the queue and the settings', async (t: TestContext) => {
    assert.match(
      await smtplibSend(
        ports.smtp,
        'scanner@office.test',
        ['stuck@example.com'],
        mail('stuck', 'stuck@example.com', 'Waits in the queue'),
      ),
      /^250 /,
    );
    const admin = await signIn();
    const stuck = await eventually(
      'the deferred message in the queue',
      async () => {
        const queue = await api<QueueEntry[]>(admin, '/api/queue').catch(() => []);
        return queue.find((q) =>
          q.recipients.some((r) => r.address === 'stuck@example.com' && r.status === 'deferred'),
        );
      },
      { timeoutMs: 300_000, everyMs: 2_000 },
    );
    const box = vm!;
    const from = box.console.length;
    box.type('systemctl reboot\n');
    await box.waitFor(/Booting Linux|Linux version/, BOOT_MS, from);
    const restartedAt = performance.now();
    await welcome(box, from);
    t.diagnostic(
      `welcome shown ${((performance.now() - restartedAt) / 1000).toFixed(1)} s after the kernel started again`,
    );
    const again = await signIn();
    const { config: settings } = await api<{
      config: { delivery: { smarthost: { host: string; port: number } } };
    }>(again, '/api/settings');
    assert.deepEqual(
      [settings.delivery.smarthost.host, settings.delivery.smarthost.port],
      [HOST_FROM_GUEST, upstream.port],
    );
    const queue = await api<QueueEntry[]>(again, '/api/queue');
    assert.ok(
      queue.some((q) => q.id === stuck.id),
      `queued ${stuck.id} survived: ${JSON.stringify(queue)}`,
    );
    await box.login('root', ROOT_PASSWORD);
    const rss = await box.must(
      'grep VmRSS /proc/$(systemctl show -p MainPID --value edge-relay.service)/status',
    );
    const memory = (await box.must("free -m | awk '/^Mem:/ { print $3, $2 }'")).trim().split(' ');
    const root = (await box.must('df -m --output=size,avail / | tail -n 1')).trim().split(/\s+/);
    figures['relay RSS after boot'] = `${Math.round(Number(/(\d+) kB/.exec(rss)?.[1]) / 1024)} MB`;
    figures['system used memory after boot'] = `${memory[0]} MB of ${memory[1]} MB`;
    figures['root file system on a card 1 GiB larger than the image'] =
      `${root[0]} MiB, ${root[1]} MiB free`;
    assert.ok(Number(root[1]) > 1500, `the grown root has room for mail: ${root.join(' ')}`);
  });

  test('pulling the plug while mail flows loses nothing that was acknowledged', async (t: TestContext) => {
    const box = vm!;
    const before = upstream.messages.length;
    // One session sending message after message; each acknowledged id is printed at once
    const sender = `import smtplib, sys, time
s = smtplib.SMTP('127.0.0.1', int(sys.argv[1]), timeout=60)
for i in range(200):
    msg = 'From: scanner@office.test\\r\\nTo: flow@example.com\\r\\nSubject: flow %d\\r\\nMessage-ID: <flow-%d@scanner.office.test>\\r\\n\\r\\npage %d\\r\\n' % (i, i, i)
    s.sendmail('scanner@office.test', ['flow@example.com'], msg)
    print('flow-%d' % i, flush=True)`;
    const acked: string[] = [];
    const child = spawn('python3', ['-c', sender, String(ports.smtp)]);
    child.stdout.on('data', (chunk: Buffer) =>
      acked.push(...chunk.toString().split('\n').filter(Boolean)),
    );
    await eventually('20 acknowledged messages', () => acked.length >= 20, {
      timeoutMs: 300_000,
      everyMs: 200,
    });
    await box.powerOff();
    child.kill('SIGKILL');
    vm = undefined;
    holdOddFlow = false;
    const deliveredBefore = upstream.messages.length - before;
    t.diagnostic(`plug pulled after ${acked.length} acknowledged, ${deliveredBefore} delivered`);
    const next = await boot();
    const seconds = await secondsToSmtp(next, ports.smtp, BOOT_MS);
    figures['power-on to SMTP after a power cut'] = `${seconds.toFixed(1)} s`;
    assert.ok(
      /EDGE_ROOT: (clean|recovering journal)/.test(next.console),
      'fsck ran on the root after the power cut',
    );
    const ids = () =>
      new Set(
        upstream.messages
          .map((m) => /Message-ID: <(flow-\d+)@/.exec(m.raw.toString())?.[1])
          .filter(Boolean),
      );
    const missing = await eventually(
      'every acknowledged message delivered',
      () => {
        const lost = acked.filter((id) => !ids().has(id));
        return lost.length === 0 && lost;
      },
      { timeoutMs: 600_000, everyMs: 5_000 },
    ).catch(() => acked.filter((id) => !ids().has(id)));
    assert.deepEqual(missing, [], `acknowledged but never delivered: ${missing.join(' ')}`);
  });

  test('a newer .deb installed on the running box keeps the config, the queue and the mailboxes', async () => {
    const box = vm!;
    await box.login('root', ROOT_PASSWORD);
    const admin = await signIn();
    const queued = (await api<QueueEntry[]>(admin, '/api/queue')).map((q) => q.id);
    const mailbox = await pop3(ports.pop3, 'postmaster', POSTMASTER_PASSWORD);
    await box.must(`dpkg -i /boot/firmware/${NEWER_DEB}`, 900_000);
    assert.equal(await box.must("dpkg-query -W -f '${Version}' edge-relay"), newerVersion);
    assert.match(
      await box.must('stat -c "%U %a" /etc/edge-relay/config.json'),
      /^edge-relay 600\n$/,
    );
    await secondsToSmtp(box, ports.smtp, BOOT_MS);
    const after = await eventually(
      'the page after the upgrade',
      () => signIn().catch(() => undefined),
      { timeoutMs: 300_000, everyMs: 2_000 },
    );
    const { config: settings } = await api<{
      config: { delivery: { smarthost: { host: string } } };
    }>(after, '/api/settings');
    assert.equal(settings.delivery.smarthost.host, HOST_FROM_GUEST, 'settings kept');
    const queue = (await api<QueueEntry[]>(after, '/api/queue')).map((q) => q.id);
    for (const id of queued) assert.ok(queue.includes(id), `queued ${id} kept`);
    assert.equal(
      (await pop3(ports.pop3, 'postmaster', POSTMASTER_PASSWORD)).count,
      mailbox.count,
      'mailbox kept',
    );
  });
});
