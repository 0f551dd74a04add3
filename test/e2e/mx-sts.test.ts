/**
 * MTA-STS (RFC 8461) end to end: policies published through the test DNS
 * server (_mta-sts TXT, mta-sts.<domain> A) and served over real HTTPS with a
 * certificate from the test CA; MX upstreams present certificates for their
 * MX names (made here by openssl) or for the wrong name.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { makeCerts } from '../support/certs.js';
import { smtplibSend } from '../support/clients.js';
import {
  freePortOn,
  startDnsServer,
  type DnsEntry,
  type DnsServer,
} from '../support/dns-server.js';
import { queuedId, triedOnce } from '../support/queued.js';
import { launchRelay, type RunningRelay } from '../support/relay.js';
import { startUpstream, type Upstream } from '../support/upstream.js';

const POLICY_HOST = '127.0.0.20';
const MX = {
  good: '127.0.0.30',
  mismatch: '127.0.0.31',
  badcert: '127.0.0.32',
  testing: '127.0.0.33',
} as const;

const POLICIES: Record<string, string> = {
  'sts-good.test': 'version: STSv1\r\nmode: enforce\r\nmx: *.sts-good.test\r\nmax_age: 86400\r\n',
  'sts-mismatch.test':
    'version: STSv1\r\nmode: enforce\r\nmx: mail.sts-mismatch.test\r\nmax_age: 86400\r\n',
  'sts-badcert.test':
    'version: STSv1\r\nmode: enforce\r\nmx: mx.sts-badcert.test\r\nmax_age: 86400\r\n',
  'sts-testing.test': 'version: STSv1\nmode: testing\nmx: mail.sts-testing.test\nmax_age: 86400\n',
};

/** A certificate from the test CA for `names` */
function issue(file: string, names: string[]): { key: string; cert: string } {
  const { dir } = makeCerts();
  const run = (args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
  run([
    'req',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-keyout',
    `${file}.key`,
    '-out',
    `${file}.csr`,
    '-subj',
    `/CN=${names[0]}`,
  ]);
  writeFileSync(
    path.join(dir, `${file}.ext`),
    `subjectAltName=${names.map((n) => `DNS:${n}`).join(',')}\nextendedKeyUsage=serverAuth\n`,
  );
  run([
    'x509',
    '-req',
    '-in',
    `${file}.csr`,
    '-CA',
    'ca.crt',
    '-CAkey',
    'ca.key',
    '-CAcreateserial',
    '-out',
    `${file}.crt`,
    '-days',
    '2',
    '-extfile',
    `${file}.ext`,
  ]);
  return {
    key: readFileSync(path.join(dir, `${file}.key`), 'utf8'),
    cert: readFileSync(path.join(dir, `${file}.crt`), 'utf8'),
  };
}

interface PolicyServer {
  port: number;
  requests: string[];
  close(): Promise<void>;
}

async function startPolicyServer(): Promise<PolicyServer> {
  const requests: string[] = [];
  const server = https.createServer(
    issue(
      'mta-sts',
      Object.keys(POLICIES).map((d) => `mta-sts.${d}`),
    ),
    (req, res) => {
      const domain = String(req.headers.host ?? '').replace(/^mta-sts\./, '');
      requests.push(`${req.headers.host}${req.url}`);
      const policy = POLICIES[domain];
      if (req.url !== '/.well-known/mta-sts.txt' || !policy) return void res.writeHead(404).end();
      res.writeHead(200, { 'content-type': 'text/plain' }).end(policy);
    },
  );
  await new Promise<void>((resolve) => server.listen(0, POLICY_HOST, resolve));
  return {
    port: (server.address() as AddressInfo).port,
    requests,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

function zone(): Record<string, DnsEntry> {
  const entries: Record<string, DnsEntry> = {};
  const mxFor: Record<string, [string, string]> = {
    'sts-good.test': ['mx.sts-good.test', MX.good],
    'sts-mismatch.test': ['rogue.sts-mismatch.test', MX.mismatch],
    'sts-badcert.test': ['mx.sts-badcert.test', MX.badcert],
    'sts-testing.test': ['rogue.sts-testing.test', MX.testing],
  };
  for (const [domain, [exchange, address]] of Object.entries(mxFor)) {
    entries[domain] = [{ type: 'MX', preference: 10, exchange }];
    entries[exchange] = [{ type: 'A', address }];
    entries[`_mta-sts.${domain}`] = [{ type: 'TXT', text: 'v=STSv1; id=20260101T000000' }];
    entries[`mta-sts.${domain}`] = [{ type: 'A', address: POLICY_HOST }];
  }
  return entries;
}

const message = (subject: string) =>
  `From: nas@office.test\r\nSubject: ${subject}\r\n\r\nBackup finished\r\n`;

describe('MTA-STS on direct MX delivery', () => {
  let dns: DnsServer;
  let policies: PolicyServer;
  let relay: RunningRelay;
  const upstreams: Record<string, Upstream> = {};

  before(async () => {
    const mxPort = await freePortOn(Object.values(MX));
    const certFor = (name: string) => ({ extra: issue(name, [name]) });
    upstreams.good = await startUpstream({
      host: MX.good,
      port: mxPort,
      ...certFor('mx.sts-good.test'),
    });
    // A valid certificate for its own name: only the policy's mx list keeps mail away from it
    upstreams.mismatch = await startUpstream({
      host: MX.mismatch,
      port: mxPort,
      ...certFor('rogue.sts-mismatch.test'),
    });
    // The test CA's certificate for 127.0.0.1/localhost: wrong for mx.sts-badcert.test
    upstreams.badcert = await startUpstream({ host: MX.badcert, port: mxPort });
    upstreams.testing = await startUpstream({ host: MX.testing, port: mxPort });
    policies = await startPolicyServer();
    dns = await startDnsServer(zone());
    relay = await launchRelay({
      config: {
        delivery: {
          mode: 'mx',
          mx: { port: mxPort, tls: 'may' },
          mtaSts: { enabled: true, port: policies.port },
          dns: { servers: [dns.address], timeout: '2s' },
          tls: { caFile: makeCerts().caFile },
        },
      },
    });
  });

  after(async () => {
    await relay?.stop();
    await Promise.all(Object.values(upstreams).map((u) => u.close()));
    await policies?.close();
    await dns?.close();
  });

  const send = async (to: string): Promise<string> =>
    queuedId(await smtplibSend(relay.smtpPort, 'nas@office.test', [to], message(to)));

  test('enforce, listed MX with a valid certificate: delivered over verified TLS; the policy is fetched once and cached', async () => {
    await send('a@sts-good.test');
    await send('b@sts-good.test');
    const received = await upstreams.good!.waitFor(2);
    assert.ok(received.every((m) => m.secure));
    assert.equal(
      policies.requests.filter((r) => r === 'mta-sts.sts-good.test/.well-known/mta-sts.txt').length,
      1,
    );
  });

  test('enforce, MX not in the policy: not delivered there, deferred', async () => {
    const id = await send('ops@sts-mismatch.test');
    const item = await triedOnce(relay, id);
    assert.equal(item.recipients[0]?.status, 'deferred');
    assert.match(
      item.lastError ?? '',
      /MTA-STS policy of "sts-mismatch\.test" allows none of its MX hosts \(rogue\.sts-mismatch\.test\)/,
    );
    assert.equal(upstreams.mismatch!.messages.length, 0);
  });

  test('enforce, listed MX with a certificate for another name: not delivered there, deferred', async () => {
    const id = await send('ops@sts-badcert.test');
    const item = await triedOnce(relay, id);
    assert.equal(item.recipients[0]?.status, 'deferred');
    assert.match(item.lastError ?? '', /mx\.sts-badcert\.test:\d+/);
    assert.match(item.lastError ?? '', /altnames|certificate/i);
    assert.equal(upstreams.badcert!.messages.length, 0);
    assert.equal(upstreams.badcert!.dataAttempts, 0, 'never reached DATA');
  });

  test('testing mode: a mismatching MX with a wrong certificate still gets the mail, and the log says why it would not', async () => {
    await send('ops@sts-testing.test');
    const [received] = await upstreams.testing!.waitFor(1);
    assert.deepEqual(received?.to, ['ops@sts-testing.test']);
    await relay.waitForLog(
      (l) => /MTA-STS: MX hosts not in the policy/.test(l.msg) && l.mode === 'testing',
    );
    await relay.waitForLog((l) => /MTA-STS \(testing mode\): TLS check failed/.test(l.msg));
  });

  // Last: it restarts the relay and takes the policy host down
  test('the cached policy survives a restart: with the policy host down, an MX outside the policy still gets nothing', async () => {
    const cache = JSON.parse(
      readFileSync(path.join(relay.dataDir, 'mta-sts-policies.json'), 'utf8'),
    ) as { policies: Record<string, { id: string; expiresAt: number }> };
    assert.equal(cache.policies['sts-good.test']?.id, '20260101T000000');
    assert.ok(
      (cache.policies['sts-good.test']?.expiresAt ?? 0) > Date.now() + 86_000_000,
      'kept for max_age (86400 s)',
    );
    const config = JSON.parse(readFileSync(relay.configFile, 'utf8')) as Record<string, unknown>;
    await relay.stop();
    await policies.close();
    // An attacker's MX for the domain, with a certificate valid for its own name
    dns.set('sts-good.test', [{ type: 'MX', preference: 10, exchange: 'rogue.sts-mismatch.test' }]);
    relay = await launchRelay({ dir: relay.dir, config });
    const before = upstreams.mismatch!.dataAttempts;
    const id = await send('after-restart@sts-good.test');
    const item = await triedOnce(relay, id);
    assert.equal(item.recipients[0]?.status, 'deferred');
    assert.match(
      item.lastError ?? '',
      /MTA-STS policy of "sts-good\.test" allows none of its MX hosts \(rogue\.sts-mismatch\.test\)/,
    );
    assert.equal(
      upstreams.mismatch!.dataAttempts,
      before,
      'nothing sent to the MX outside the policy',
    );
  });
});
