/** Upstream size limits: which limit a recipient meets (pure), and the store that learns and keeps them */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import SMTPConnection from 'nodemailer/lib/smtp-connection';
import { resolveConfig } from '../../src/config/validate.js';
import {
  LIMITS_FILE,
  UpstreamLimits,
  ehloSize,
  upstreamKey,
} from '../../src/deliver/upstream-limits.js';
import {
  OUTBOUND_HEADROOM,
  advertisedSize,
  formatSize,
  messageRule,
  ownRule,
  recipientRule,
  type UpstreamSizes,
} from '../../src/intake/size-limits.js';
import { silentLogger } from '../../src/log.js';

const MB = 1024 * 1024;
const smarthostConfig = resolveConfig(
  {
    smtp: { maxMessageSize: 50 * MB },
    mailbox: { localDomains: ['box.lan'] },
    delivery: { smarthost: { host: 'smtp.example.net', port: 587 } },
  },
  'test',
);
const mxConfig = resolveConfig(
  {
    smtp: { maxMessageSize: 50 * MB },
    mailbox: { localDomains: ['box.lan'] },
    delivery: { mode: 'mx' },
  },
  'test',
);

const known = (limits: Record<string, number>): UpstreamSizes => ({
  limitOf: (key) =>
    key && key in limits ? { bytes: limits[key] as number, name: key } : undefined,
});

test('formatSize: KB below a megabyte, one decimal above', () => {
  assert.equal(formatSize(100_000), '98 KB');
  assert.equal(formatSize(25 * MB), '25 MB');
  assert.equal(formatSize(31.24 * MB), '31.2 MB');
  assert.equal(formatSize(10), '1 KB');
});

test('a refusal never shows a message just over the limit as the same size', () => {
  assert.equal(
    ownRule(smarthostConfig).refusal(50 * MB + 10).message,
    `Message is ${50 * MB + 10} bytes; this relay accepts at most ${50 * MB} bytes. Scan at a lower resolution or fewer pages`,
  );
  const refusal = ownRule(smarthostConfig).refusal(60 * MB);
  assert.equal(
    refusal.toReply(),
    '552 5.3.4 Message is 60 MB; this relay accepts at most 50 MB. Scan at a lower resolution or fewer pages',
  );
});

test("a local mailbox meets only our own limit; a remote recipient the smaller of ours and its upstream's", () => {
  const upstreams = known({ 'smarthost smtp.example.net:587': 25 * MB });
  assert.equal(recipientRule('alice@box.lan', smarthostConfig, upstreams).bytes, 50 * MB);
  assert.equal(
    recipientRule('bob@example.com', smarthostConfig, upstreams).bytes,
    25 * MB - OUTBOUND_HEADROOM,
  );
  assert.match(
    recipientRule('bob@example.com', smarthostConfig, upstreams).refusal(30 * MB).message,
    /the upstream smarthost smtp\.example\.net:587 accepts at most 25 MB/,
  );
  assert.equal(
    recipientRule(
      'bob@example.com',
      smarthostConfig,
      known({ 'smarthost smtp.example.net:587': 150 * MB }),
    ).bytes,
    50 * MB,
    'a larger upstream limit does not raise ours',
  );
  assert.equal(
    recipientRule('bob@example.com', smarthostConfig, known({})).bytes,
    50 * MB,
    'not known yet: ours',
  );
});

test('a message meets the smallest limit of its recipients', () => {
  const upstreams = known({ 'mx small.test': 10 * MB, 'mx mid.test': 20 * MB });
  assert.equal(messageRule(['a@box.lan'], mxConfig, upstreams).bytes, 50 * MB);
  assert.equal(
    messageRule(['a@box.lan', 'b@mid.test', 'c@small.test'], mxConfig, upstreams).bytes,
    10 * MB - OUTBOUND_HEADROOM,
  );
});

test("EHLO advertises the smarthost's limit in smarthost mode, our own in MX mode", () => {
  assert.equal(advertisedSize(smarthostConfig, known({})), 50 * MB);
  assert.equal(
    advertisedSize(smarthostConfig, known({ 'smarthost smtp.example.net:587': 25 * MB })),
    25 * MB - OUTBOUND_HEADROOM,
  );
  assert.equal(advertisedSize(mxConfig, known({ 'mx small.test': 10 * MB })), 50 * MB);
});

test('upstream keys: one per smarthost, per MX domain and per override host; none for mail that stays', () => {
  assert.equal(upstreamKey({ kind: 'smarthost', host: 'h', port: 25 }), 'smarthost h:25');
  assert.equal(upstreamKey({ kind: 'mx', domain: 'example.com', tls: 'may' }), 'mx example.com');
  assert.equal(upstreamKey({ kind: 'host', host: 'h', port: 2525, tls: 'may' }), 'host h:2525');
  assert.equal(upstreamKey({ kind: 'local', mailbox: 'a' }), null);
});

const fileOf = (dir: string) => path.join(dir, LIMITS_FILE);

test('learned limits are written once when they change, and read back after a restart', async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'upstream-limits-'));
  const limits = await UpstreamLimits.open(dir, silentLogger());
  const heard = limits.listener({ kind: 'mx', domain: 'example.com', tls: 'may' });
  assert.ok(heard);
  heard(25 * MB, 'mx1.example.com');
  await limits.flush();
  const first = statSync(fileOf(dir)).ino;
  heard(25 * MB, 'mx1.example.com');
  await limits.flush();
  assert.equal(
    statSync(fileOf(dir)).ino,
    first,
    'the same limit again: no write (the rename would give a new inode)',
  );
  const reopened = await UpstreamLimits.open(dir, silentLogger());
  assert.deepEqual(reopened.limitOf('mx example.com'), {
    bytes: 25 * MB,
    name: 'mx1.example.com for example.com',
  });
  heard(null, 'mx1.example.com');
  await limits.flush();
  assert.equal(
    (await UpstreamLimits.open(dir, silentLogger())).limitOf('mx example.com'),
    undefined,
    'an upstream that stops advertising SIZE has no limit any more',
  );
});

test('a burst of changes costs at most two writes, and a damaged file means nothing known', async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'upstream-limits-'));
  const limits = await UpstreamLimits.open(dir, silentLogger());
  for (let i = 0; i < 600; i++) limits.heard(`mx d${i}.test`, `mx.d${i}.test`, MB + i);
  await limits.flush();
  const stored = JSON.parse(readFileSync(fileOf(dir), 'utf8')) as Record<string, unknown>;
  assert.equal(Object.keys(stored).length, 500, 'bounded: the longest unchanged go first');
  assert.ok(!('mx d0.test' in stored) && 'mx d599.test' in stored);
  writeFileSync(fileOf(dir), '{"mx a.test": {"bytes": "lots"}, "broken');
  assert.equal((await UpstreamLimits.open(dir, silentLogger())).limitOf('mx d599.test'), undefined);
});

test('a fixed limit (Graph) is known without EHLO and wins over a learned one', async () => {
  const limits = await UpstreamLimits.open(
    mkdtempSync(path.join(tmpdir(), 'upstream-limits-')),
    silentLogger(),
  );
  assert.deepEqual(limits.limitOf('graph'), { bytes: 35 * MB, name: 'Microsoft Graph' });
  limits.heard('graph', 'somewhere', 10);
  assert.equal(limits.limitOf('graph')?.bytes, 35 * MB);
  await limits.flush();
});

test('guard: nodemailer still keeps the EHLO SIZE where ehloSize reads it', () => {
  const connection = new SMTPConnection({});
  const parse = (
    connection as unknown as { _parseEhloExtensions(text: string): void }
  )._parseEhloExtensions.bind(connection);
  assert.equal(ehloSize(connection), null);
  parse('250-mx.example.com\r\n250-PIPELINING\r\n250 SIZE 36700160');
  assert.equal(ehloSize(connection), 36_700_160);
});
