/**
 * The disk image from `make image`, read without mounting it: an MBR with a
 * bootable FAT boot partition and an ext4 root right behind it; the root file
 * system checks clean; the boot partition holds the Raspberry Pi firmware,
 * kernel and a config naming the root partition; fstab agrees with the table
 * and the initrd can check the root it names; the box gets security updates
 * and spares its card.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { rmSync, statSync } from 'node:fs';
import { after, before, describe, test, type TestContext } from 'node:test';
import {
  IMAGE,
  SCRATCH,
  debugfs,
  ensureImage,
  extractPartition,
  layout,
  ok,
  partitionTable,
  type Layout,
  type Partition,
} from './image-files.js';

const MIB_SECTORS = 2048;

describe('the Raspberry Pi image', { timeout: 1_800_000 }, () => {
  let l: Layout;
  let rootFs: string;
  let bootOffset: number;
  const boot = () => `${IMAGE}@@${bootOffset}`;

  before(() => {
    ensureImage();
    l = layout();
    rootFs = extractPartition(1, 'root.ext4').file;
    bootOffset = partitionTable().partitions[0]!.start * 512;
  });
  after(() => rmSync(SCRATCH, { recursive: true, force: true }));

  test('partition table: MBR, FAT32 boot partition (bootable) then Linux root to the end of the image', (t: TestContext) => {
    const table = partitionTable();
    assert.equal(table.label, 'dos');
    assert.equal(table.id, `0x${l.DISK_ID}`);
    assert.equal(table.partitions.length, 2);
    const [bootPart, rootPart] = table.partitions as [Partition, Partition];
    assert.equal(bootPart.type, 'c', 'W95 FAT32 (LBA)');
    assert.equal(bootPart.bootable, true);
    assert.equal(bootPart.start, Number(l.BOOT_START_MIB) * MIB_SECTORS);
    assert.equal(bootPart.size, Number(l.BOOT_SIZE_MIB) * MIB_SECTORS);
    assert.equal(rootPart.type, '83', 'Linux');
    assert.equal(rootPart.start, bootPart.start + bootPart.size, 'root right behind boot');
    assert.equal(rootPart.start % MIB_SECTORS, 0, 'aligned to 1 MiB');
    const bytes = statSync(IMAGE).size;
    assert.equal((rootPart.start + rootPart.size) * 512, bytes, 'root ends where the image ends');
    // sfdisk -d is the form people paste into bug reports: it must name both partitions
    const dump = ok('sfdisk', ['-d', IMAGE]);
    assert.match(dump, /^label: dos$/m);
    assert.equal(dump.split('\n').filter((line) => line.startsWith(IMAGE)).length, 2);
    t.diagnostic(
      `image: ${Math.round(bytes / 2 ** 20)} MiB, ${Math.round((statSync(IMAGE).blocks * 512) / 2 ** 20)} MiB on disk`,
    );
  });

  test('root file system: ext4, labelled, e2fsck -fn finds nothing to fix', () => {
    const header = ok('dumpe2fs', ['-h', rootFs]);
    assert.match(header, new RegExp(`^Filesystem volume name:\\s+${l.ROOT_LABEL}$`, 'm'));
    assert.match(header, /^Filesystem features:.*\bextent\b/m);
    ok('e2fsck', ['-fn', rootFs]);
  });

  test("root file system: fstab mounts both partitions by the table's ids, hostname is set", () => {
    const fstab = debugfs(rootFs, 'cat /etc/fstab');
    assert.match(fstab, new RegExp(`^PARTUUID=${l.ROOT_PARTUUID}\\s+/\\s+ext4\\s`, 'm'));
    assert.match(
      fstab,
      new RegExp(`^PARTUUID=${l.BOOT_PARTUUID}\\s+/boot/firmware\\s+vfat\\s`, 'm'),
    );
    assert.equal(debugfs(rootFs, 'cat /etc/hostname').trim(), l.HOSTNAME_);
    const entries = debugfs(rootFs, 'ls -l /boot/firmware')
      .split('\n')
      .map((line) => line.trim().split(/\s+/).pop())
      .filter(Boolean);
    assert.deepEqual(entries, ['.', '..'], 'an empty mount point for the boot partition');
  });

  test('fstab: the root is checked at boot (pass 1) and mounted noatime', () => {
    const fstab = debugfs(rootFs, 'cat /etc/fstab');
    const root = fstab
      .split('\n')
      .find((line) => /^\S+\s+\/\s/.test(line))
      ?.split(/\s+/);
    assert.ok(root, fstab);
    assert.match(root[3] ?? '', /(^|,)noatime(,|$)/, 'reads do not write to the card');
    assert.equal(root[5], '1', 'fsck pass 1');
  });

  test('initrd: has fsck, e2fsck and logsave, so the root is checked (and repaired) before it is mounted', () => {
    const config = ok('mtype', ['-i', boot(), '::/config.txt']);
    const initrd = /^initramfs (initrd\.img-\S+)$/m.exec(config)?.[1];
    assert.ok(initrd, config);
    const packed = execFileSync('mtype', ['-i', boot(), `::/${initrd}`], {
      maxBuffer: 256 * 2 ** 20,
    });
    const files = execFileSync('cpio', ['-it', '--quiet'], {
      input: execFileSync('gzip', ['-dc'], { input: packed, maxBuffer: 512 * 2 ** 20 }),
      maxBuffer: 64 * 2 ** 20,
      encoding: 'utf8',
    }).split('\n');
    for (const tool of [
      'usr/sbin/fsck',
      'usr/sbin/e2fsck',
      'usr/sbin/logsave',
      'usr/sbin/fsck.ext4',
    ]) {
      assert.ok(
        files.includes(tool) || files.includes(tool.replace('usr/', '')),
        `${tool} in ${initrd}`,
      );
    }
    assert.match(
      ok('mtype', ['-i', boot(), '::/cmdline.txt']),
      /(^| )fsck\.repair=yes( |$)/m,
      "a power cut's damage is repaired without asking",
    );
  });

  test('apt: bookworm, bookworm-updates and bookworm-security, so apt upgrade brings security fixes', () => {
    const sources = debugfs(rootFs, 'cat /etc/apt/sources.list');
    for (const suite of ['bookworm', 'bookworm-updates', 'bookworm-security']) {
      assert.match(
        sources,
        new RegExp(`^deb \\S+ ${suite} main non-free-firmware$`, 'm'),
        `${suite} in\n${sources}`,
      );
    }
    assert.match(
      sources,
      /^deb http:\/\/security\.debian\.org\/debian-security bookworm-security /m,
    );
  });

  test('card wear and memory: the journal capped, zram swap configured', () => {
    assert.match(
      debugfs(rootFs, 'cat /etc/systemd/journald.conf.d/edge-relay.conf'),
      /^SystemMaxUse=32M$/m,
    );
    assert.match(debugfs(rootFs, 'cat /etc/systemd/zram-generator.conf'), /^\[zram0\]$/m);
  });

  test("login: an empty password counts only on the screen's terminals (tty1..), never on a serial console", () => {
    const login = debugfs(rootFs, 'cat /etc/pam.d/login').split('\n');
    const rule = login.indexOf(
      'auth [success=1 default=ignore] pam_succeed_if.so quiet tty =~ ^(/dev/)?tty[0-9]+$',
    );
    assert.ok(rule >= 0, login.join('\n'));
    assert.equal(
      login[rule + 1],
      'auth [success=done default=die] pam_unix.so',
      'other terminals: pam_unix without nullok decides',
    );
    assert.equal(
      login[rule + 2],
      '@include common-auth',
      'the screen: the usual stack, nullok included',
    );
    const vt = new RegExp('^(/dev/)?tty[0-9]+$');
    assert.deepEqual(
      ['tty1', '/dev/tty2', 'ttyS1', 'ttyAMA0', 'hvc0', 'pts/0'].filter((tty) => vt.test(tty)),
      ['tty1', '/dev/tty2'],
    );
  });

  test('boot partition: FAT32 that checks clean, with firmware, kernel, initrd, device trees and the two configs', () => {
    const { file } = extractPartition(0, 'boot.vfat');
    ok('fsck.vfat', ['-n', file]);
    const listing = ok('mdir', ['-b', '-i', boot(), '::/']);
    for (const name of [
      'config.txt',
      'cmdline.txt',
      'edge-relay.txt',
      'start4.elf',
      'fixup4.dat',
      'bootcode.bin',
      'bcm2711-rpi-4-b.dtb',
      'bcm2837-rpi-3-b.dtb',
    ]) {
      assert.ok(
        listing.split('\n').includes(`::/${name}`),
        `${name} on the boot partition:\n${listing}`,
      );
    }
    const info = ok('minfo', ['-i', boot()]);
    assert.match(info, new RegExp(`^disk label="${l.BOOT_LABEL} *"$`, 'm'));
    assert.match(info, /^disk type="FAT32 *"$/m);
    assert.match(
      info,
      new RegExp(`^hidden sectors: ${bootOffset / 512}$`, 'm'),
      'the boot sector knows where its partition starts',
    );
  });

  test('boot config: the kernel is told the root partition, config.txt loads the 64-bit kernel and initrd', () => {
    const cmdline = ok('mtype', ['-i', boot(), '::/cmdline.txt']);
    assert.equal(cmdline.trim().split('\n').length, 1, 'one line, as the firmware wants');
    assert.match(cmdline, new RegExp(`(^| )root=PARTUUID=${l.ROOT_PARTUUID}( |$)`, 'm'));
    assert.match(cmdline, /(^| )rootwait( |$)/m);
    assert.match(
      cmdline,
      /(^| )net\.ifnames=0( |$)/m,
      'the wired port is eth0, as /etc/network/interfaces.d/eth0 expects',
    );
    const config = ok('mtype', ['-i', boot(), '::/config.txt']);
    assert.match(config, /^arm_64bit=1$/m);
    // The kernel and initrd config.txt names are on the partition
    const listing = ok('mdir', ['-b', '-i', boot(), '::/']).split('\n');
    const kernel = /^kernel=(vmlinuz-\S+)$/m.exec(config)?.[1];
    const initrd = /^initramfs (initrd\.img-\S+)$/m.exec(config)?.[1];
    assert.ok(kernel && listing.includes(`::/${kernel}`), `kernel ${kernel} present`);
    assert.ok(initrd && listing.includes(`::/${initrd}`), `initrd ${initrd} present`);
    assert.doesNotMatch(cmdline, /(^| )cma=/m, 'no cma= (can stop a Pi 4 from booting)');
    assert.match(cmdline, /console=tty0\s+root=/, 'the screen is the main console');
  });
});
