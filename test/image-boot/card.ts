/**
 * A copy of the image as the test's SD card, larger than the image (as any
 * real card is), and edits to it while the emulated box is off: files on the
 * FAT boot partition with mtools, files in the ext4 root with debugfs (only
 * on a cleanly shut down file system: debugfs does not replay a journal).
 */
import { execFileSync } from 'node:child_process';
import { statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { ok } from '../image/image-files.js';

export class Card {
  readonly bootOffset: number;
  readonly rootOffset: number;

  constructor(
    readonly file: string,
    source: string,
    extraMiB: number,
  ) {
    ok('cp', ['--sparse=always', source, file]);
    ok('truncate', ['-s', `${statSync(source).size + extraMiB * 2 ** 20}`, file]);
    const table = JSON.parse(ok('sfdisk', ['--json', file])) as {
      partitiontable: { partitions: { start: number }[] };
    };
    const [boot, root] = table.partitiontable.partitions;
    if (!boot || !root) throw new Error('The image has a boot and a root partition');
    this.bootOffset = boot.start * 512;
    this.rootOffset = root.start * 512;
  }

  /** Copies a host file onto the boot partition (replacing one of that name) */
  copyToBoot(hostFile: string, name: string): void {
    ok('mcopy', ['-o', '-i', `${this.file}@@${this.bootOffset}`, hostFile, `::/${name}`]);
  }

  writeToBoot(name: string, text: string, scratch: string): void {
    const hostFile = path.join(scratch, `boot-${name}`);
    writeFileSync(hostFile, text);
    this.copyToBoot(hostFile, name);
  }

  private get rootFs(): string {
    return `${this.file}?offset=${this.rootOffset}`;
  }

  readRoot(guestPath: string): string {
    return execFileSync('debugfs', ['-R', `cat ${guestPath}`, this.rootFs], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
    });
  }

  /** Replaces a file in the root with `text`, owned by uid:gid with `mode` */
  writeRoot(
    guestPath: string,
    text: string,
    owner: { uid: number; gid: number; mode: number },
    scratch: string,
  ): void {
    const hostFile = path.join(scratch, `root-${path.basename(guestPath)}`);
    writeFileSync(hostFile, text);
    const requests = [
      `rm ${guestPath}`,
      `write ${hostFile} ${guestPath}`,
      `set_inode_field ${guestPath} uid ${owner.uid}`,
      `set_inode_field ${guestPath} gid ${owner.gid}`,
      `set_inode_field ${guestPath} mode 0100${owner.mode.toString(8).padStart(3, '0')}`,
    ];
    execFileSync('debugfs', ['-w', '-f', '-', this.rootFs], {
      input: requests.join('\n'),
      stdio: ['pipe', 'ignore', 'pipe'],
    });
    if (this.readRoot(guestPath) !== text) throw new Error(`debugfs did not write ${guestPath}`);
  }

  /** uid and gid of a user, from the root's /etc/passwd */
  idsOf(user: string): { uid: number; gid: number } {
    const line = this.readRoot('/etc/passwd')
      .split('\n')
      .find((l) => l.startsWith(`${user}:`));
    const [, , uid, gid] = line?.split(':') ?? [];
    if (uid === undefined || gid === undefined) throw new Error(`No user ${user} in the image`);
    return { uid: Number(uid), gid: Number(gid) };
  }

  groupId(group: string): number {
    const gid = this.readRoot('/etc/group')
      .split('\n')
      .find((l) => l.startsWith(`${group}:`))
      ?.split(':')[2];
    if (gid === undefined) throw new Error(`No group ${group} in the image`);
    return Number(gid);
  }
}
