/**
 * Shared by the image tests: builds the image when stale, reads its layout
 * (scripts/image/layout.sh, the same values the build used), its partition
 * table, and copies partitions and files out of it without loop mounts.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import { ROOT } from '../support/relay.js';

export const IMAGE = path.join(ROOT, 'dist/edge-relay-arm64.img');
/** Scratch space on the project's disk (the extracted root is ~1 GB; /tmp may be a tmpfs) */
export const SCRATCH = path.join(ROOT, '.cache/image-test');

export function ok(
  command: string,
  args: string[],
  options: { env?: NodeJS.ProcessEnv; timeoutMs?: number } = {},
): string {
  const result = spawnSync(command, args, {
    encoding: 'utf8',
    timeout: options.timeoutMs ?? 300_000,
    env: options.env ?? process.env,
    maxBuffer: 64 * 1024 * 1024,
  });
  assert.equal(
    result.status,
    0,
    `${command} ${args.join(' ')}\n${result.stdout}\n${result.stderr}`,
  );
  return result.stdout + result.stderr;
}

/** Runs make image (a no-op when the image is newer than its inputs), under the lock the other builds share */
export function ensureImage(): void {
  mkdirSync(path.join(ROOT, 'dist'), { recursive: true });
  execFileSync('flock', ['dist/.make.lock', 'make', '--no-print-directory', 'image'], {
    cwd: ROOT,
    stdio: ['ignore', 'ignore', 'inherit'],
    timeout: 1_800_000,
  });
}

export interface Layout {
  HOSTNAME_: string;
  DISK_ID: string;
  BOOT_PARTUUID: string;
  ROOT_PARTUUID: string;
  BOOT_LABEL: string;
  ROOT_LABEL: string;
  BOOT_START_MIB: string;
  BOOT_SIZE_MIB: string;
}

export function layout(): Layout {
  const names = [
    'HOSTNAME_',
    'DISK_ID',
    'BOOT_PARTUUID',
    'ROOT_PARTUUID',
    'BOOT_LABEL',
    'ROOT_LABEL',
    'BOOT_START_MIB',
    'BOOT_SIZE_MIB',
  ];
  const script = `. scripts/image/layout.sh; for n in ${names.join(' ')}; do eval "printf '%s=%s\\n' $n \\"\\$$n\\""; done`;
  const out = execFileSync('bash', ['-c', script], { cwd: ROOT, encoding: 'utf8' });
  return Object.fromEntries(
    out
      .trim()
      .split('\n')
      .map((line) => line.split('=') as [string, string]),
  ) as unknown as Layout;
}

export interface Partition {
  node: string;
  start: number;
  size: number;
  type: string;
  bootable?: boolean;
}

export interface PartitionTable {
  label: string;
  id: string;
  unit: string;
  sectorsize?: number;
  partitions: Partition[];
}

export const partitionTable = (): PartitionTable =>
  (JSON.parse(ok('sfdisk', ['--json', IMAGE])) as { partitiontable: PartitionTable })
    .partitiontable;

/** Copies partition `index` (0-based) to a file of its own; returns its path and byte offset in the image */
export function extractPartition(index: number, name: string): { file: string; offset: number } {
  const part = partitionTable().partitions[index];
  assert.ok(part, `partition ${index + 1} exists`);
  mkdirSync(SCRATCH, { recursive: true });
  const file = path.join(SCRATCH, name);
  rmSync(file, { force: true });
  ok('dd', [
    `if=${IMAGE}`,
    `of=${file}`,
    'bs=1M',
    'iflag=skip_bytes,count_bytes',
    `skip=${part.start * 512}`,
    `count=${part.size * 512}`,
    'conv=sparse',
    'status=none',
  ]);
  return { file, offset: part.start * 512 };
}

/** Output of one debugfs request on an ext4 image (no mount); its banner on stderr is dropped */
export const debugfs = (fsImage: string, request: string) =>
  execFileSync('debugfs', ['-R', request, fsImage], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'ignore'],
  });
