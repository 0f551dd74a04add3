/**
 * Direct MX delivery end to end: the relay resolves MX/A records from a real
 * DNS server on 127.0.0.1 and delivers to real upstreams on 127.0.0.10, .11, ...
 * (all on one port, delivery.mx.port), retrying, bouncing and routing per domain.
 */
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { makeCerts } from '../support/certs.js';
import { smtplibSend } from '../support/clients.js';
import { freePortOn, startDnsServer, type DnsServer } from '../support/dns-server.js';
import { launchRelay, type RunningRelay } from '../support/relay.js';
import { startUpstream, type Upstream } from '../support/upstream.js';
import { eventually } from '../support/wait.js';
import { queuedId } from '../support/queued.js';

interface Item {
  id: string;
  recipients: { address: string; status: string }[];
  attempts: number;
  lastError: string | null;
}

/** 127.0.0.9 has no listener: connections there are refused */
const REFUSING = '127.0.0.9';
const HOSTS = {
  a: '127.0.0.10',
  only: '127.0.0.11',
  flaky: '127.0.0.12',
  picky: '127.0.0.13',
  override: '127.0.0.14',
} as const;

const message = (subject: string) =>
  `From: camera@office.test\r\nSubject: ${subject}\r\n\r\nMotion detected\r\n`;

async function queueList(relay: RunningRelay): Promise<Item[]> {
  const result = await relay.cli(['queue', 'list', '--json']);
  assert.equal(result.code, 0, result.stderr);
  return JSON.parse(result.stdout) as Item[];
}

const waitForBounce = (relay: RunningRelay, address: string): Promise<string> =>
  eventually(`a bounce report naming ${address}`, () => bouncesFor(relay, address)[0], {
    timeoutMs: 15_000,
  });

/** Bounce reports in the postmaster mailbox that name `address` */
function bouncesFor(relay: RunningRelay, address: string): string[] {
  const dir = path.join(relay.dataDir, 'mailboxes/postmaster/new');
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .map((file) => readFileSync(path.join(dir, file), 'utf8'))
    .filter((text) => text.includes(`Final-Recipient: rfc822; ${address}`));
}

describe('direct MX delivery', () => {
  let dns: DnsServer;
  let relay: RunningRelay;
  let mxPort: number;
  const upstreams: Partial<Record<keyof typeof HOSTS, Upstream>> = {};
  const upstream = (name: keyof typeof HOSTS): Upstream => {
    const found = upstreams[name];
    assert.ok(found, `upstream ${name} started`);
    return found;
  };

  before(async () => {
    mxPort = await freePortOn([REFUSING, ...Object.values(HOSTS)]);
    upstreams.a = await startUpstream({ host: HOSTS.a, port: mxPort });
    upstreams.only = await startUpstream({ host: HOSTS.only, port: mxPort, offerTls: false });
    upstreams.flaky = await startUpstream({
      host: HOSTS.flaky,
      port: mxPort,
      dataReply: (attempt) => (attempt <= 2 ? [451, '4.3.0 Try later'] : undefined),
    });
    upstreams.picky = await startUpstream({
      host: HOSTS.picky,
      port: mxPort,
      rcptReply: (address) =>
        address.startsWith('gone@') ? [550, '5.1.1 No such user here'] : undefined,
    });
    upstreams.override = await startUpstream({ host: HOSTS.override, port: mxPort });
    dns = await startDnsServer({
      'backup.test': [
        { type: 'MX', preference: 20, exchange: 'mx2.backup.test' },
        { type: 'MX', preference: 10, exchange: 'mx1.backup.test' },
      ],
      'mx1.backup.test': [{ type: 'A', address: REFUSING }],
      'mx2.backup.test': [{ type: 'A', address: HOSTS.a }],
      'only-a.test': [{ type: 'A', address: HOSTS.only }],
      'null.test': [{ type: 'MX', preference: 0, exchange: '.' }],
      'flaky.test': [{ type: 'MX', preference: 10, exchange: 'mx.flaky.test' }],
      'mx.flaky.test': [{ type: 'A', address: HOSTS.flaky }],
      'picky.test': [{ type: 'MX', preference: 10, exchange: 'mx.picky.test' }],
      'mx.picky.test': [{ type: 'A', address: HOSTS.picky }],
      'broken-dns.test': 'servfail',
      'silent-dns.test': 'timeout',
      // An MX the override below must bypass
      'routed.test': [{ type: 'MX', preference: 10, exchange: 'mx1.backup.test' }],
    });
    relay = await launchRelay({
      config: {
        delivery: {
          mode: 'mx',
          mx: { port: mxPort, tls: 'may' },
          dns: { servers: [dns.address], timeout: '1s' },
          // Long enough for `queue list` to see a message between attempts on a busy machine
          retry: { delays: ['3s'], maxAge: '5d' },
          tls: { caFile: makeCerts().caFile },
          domains: {
            'routed.test': { route: 'host', host: HOSTS.override, tls: 'encrypt' },
            'typo.test': { route: 'host', host: 'no-such-host.typo.test' },
          },
        },
      },
    });
  });

  after(async () => {
    await relay?.stop();
    await Promise.all(Object.values(upstreams).map((u) => u.close()));
    await dns?.close();
  });

  test('preference 10 refuses connections: delivered to preference 20 over STARTTLS', async () => {
    await smtplibSend(
      relay.smtpPort,
      'camera@office.test',
      ['ops@backup.test'],
      message('backup MX'),
    );
    const [received] = await upstream('a').waitFor(1);
    assert.deepEqual(received?.to, ['ops@backup.test']);
    assert.equal(received?.secure, true, 'STARTTLS used when offered');
    await relay.waitForLog(
      (l) => l.msg === 'MX host unreachable; trying the next one' && l.mx === 'mx1.backup.test',
    );
    assert.ok(dns.queries.includes('MX backup.test'));
  });

  test('a domain with only an A record: delivered there (implicit MX), plain when STARTTLS is not offered', async () => {
    await smtplibSend(
      relay.smtpPort,
      'camera@office.test',
      ['ops@only-a.test'],
      message('implicit MX'),
    );
    const [received] = await upstream('only').waitFor(1);
    assert.deepEqual(received?.to, ['ops@only-a.test']);
    assert.equal(received?.secure, false);
  });

  for (const [what, address, reason] of [
    ['null MX', 'nobody@null.test', /null MX/],
    ['NXDOMAIN', 'nobody@no-such-domain.test', /does not exist \(NXDOMAIN\)/],
  ] as const) {
    test(`${what}: a bounce report at once, no retry`, async () => {
      const id = queuedId(
        await smtplibSend(relay.smtpPort, 'camera@office.test', [address], message(what)),
      );
      const report = await waitForBounce(relay, address);
      assert.match(report, /Content-Type: multipart\/report; report-type=delivery-status/);
      assert.match(report, reason);
      // Gone from the queue after one attempt: nothing is left to retry
      await eventually(
        'message removed',
        async () => !(await queueList(relay)).some((item) => item.id === id),
        { timeoutMs: 10_000 },
      );
      const domain = address.split('@')[1];
      assert.equal(
        dns.queries.filter((q) => q === `MX ${domain}`).length,
        1,
        'looked up once, never retried',
      );
    });
  }

  test('451 twice then 250: deferred with the exact reply, then delivered after exactly 3 DATA attempts', async () => {
    const id = queuedId(
      await smtplibSend(relay.smtpPort, 'camera@office.test', ['ops@flaky.test'], message('flaky')),
    );
    const deferred = await eventually(
      'deferred',
      async () =>
        (await queueList(relay)).find(
          (item) => item.id === id && item.recipients[0]?.status === 'deferred',
        ),
      { timeoutMs: 15_000 },
    );
    assert.match(
      deferred.lastError ?? '',
      new RegExp(`^451 4\\.3\\.0 Try later \\(mx\\.flaky\\.test:${mxPort}, after `),
    );
    await upstream('flaky').waitFor(1, 20_000);
    assert.equal(upstream('flaky').dataAttempts, 3);
    await eventually(
      'message removed',
      async () => !(await queueList(relay)).some((item) => item.id === id),
      { timeoutMs: 5_000 },
    );
  });

  test('recipients in two domains: both delivered, one transaction each', async () => {
    const before = { a: upstream('a').messages.length, only: upstream('only').messages.length };
    await smtplibSend(
      relay.smtpPort,
      'camera@office.test',
      ['one@backup.test', 'two@only-a.test'],
      message('two domains'),
    );
    const a = await upstream('a').waitFor(before.a + 1);
    const only = await upstream('only').waitFor(before.only + 1);
    assert.deepEqual(a.at(-1)?.to, ['one@backup.test']);
    assert.deepEqual(only.at(-1)?.to, ['two@only-a.test']);
  });

  test('one of two recipients refused 550: the other delivered, the bounce names only the refused one', async () => {
    await smtplibSend(
      relay.smtpPort,
      'camera@office.test',
      ['gone@picky.test', 'here@picky.test'],
      message('mixed'),
    );
    const [received] = await upstream('picky').waitFor(1);
    assert.deepEqual(received?.to, ['here@picky.test']);
    const report = await waitForBounce(relay, 'gone@picky.test');
    assert.match(report, /550 5\.1\.1 No such user here \(mx\.picky\.test:\d+/);
    assert.ok(
      !report.includes('Final-Recipient: rfc822; here@picky.test'),
      'the delivered recipient is not in the bounce',
    );
  });

  for (const [what, domain, reason] of [
    ['SERVFAIL', 'broken-dns.test', /ESERVFAIL/],
    ['timeout', 'silent-dns.test', /ETIMEOUT/],
  ] as const) {
    test(`DNS ${what}: deferred, not bounced`, async () => {
      const id = queuedId(
        await smtplibSend(relay.smtpPort, 'camera@office.test', [`ops@${domain}`], message(what)),
      );
      const item = await eventually(
        'attempted',
        async () => (await queueList(relay)).find((i) => i.id === id && i.attempts >= 1),
        { timeoutMs: 15_000 },
      );
      assert.equal(item.recipients[0]?.status, 'deferred');
      assert.match(item.lastError ?? '', reason);
      assert.equal(bouncesFor(relay, `ops@${domain}`).length, 0);
      // The runner holds the message's lock while it retries; delete between attempts
      await eventually(
        `queue delete ${id}`,
        async () => (await relay.cli(['queue', 'delete', id])).code === 0,
        { timeoutMs: 10_000 },
      );
    });
  }

  test('a per-domain override to one host bypasses the MX and requires TLS', async () => {
    await smtplibSend(
      relay.smtpPort,
      'camera@office.test',
      ['ops@routed.test'],
      message('override'),
    );
    const [received] = await upstream('override').waitFor(1);
    assert.deepEqual(received?.to, ['ops@routed.test']);
    assert.equal(received?.secure, true);
    assert.ok(!dns.queries.includes('MX routed.test'), 'no MX lookup for an overridden domain');
  });

  test('a per-domain host that does not resolve: deferred (a setting to fix), not bounced', async () => {
    const id = queuedId(
      await smtplibSend(relay.smtpPort, 'camera@office.test', ['ops@typo.test'], message('typo')),
    );
    const item = await eventually(
      'attempted',
      async () => (await queueList(relay)).find((i) => i.id === id && i.attempts >= 1),
      { timeoutMs: 10_000 },
    );
    assert.equal(item.recipients[0]?.status, 'deferred');
    assert.equal(item.lastError, 'No address for "no-such-host.typo.test" (delivery.domains host)');
    await eventually(
      `queue delete ${id}`,
      async () => (await relay.cli(['queue', 'delete', id])).code === 0,
      { timeoutMs: 10_000 },
    );
  });
});
