/**
 * The size known before the scan: the relay learns the upstream's SIZE from
 * its EHLO, keeps it across a restart, advertises the smallest limit that
 * applies, and refuses a message too large for where it goes with 552 5.3.4
 * while the device is still connected. Real upstreams (smtp-server with
 * `size`), Python's smtplib as the device, a loopback DNS server for MX mode.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { setupAdminOf } from '../support/browser.js';
import { makeCerts } from '../support/certs.js';
import { python, smtplibSend } from '../support/clients.js';
import { freePortOn, startDnsServer, type DnsServer } from '../support/dns-server.js';
import { newMail, launchRelay, type RunningRelay } from '../support/relay.js';
import { startUpstream, viaSmarthost, type Upstream } from '../support/upstream.js';
import { eventually } from '../support/wait.js';

const UPSTREAM_SIZE = 100_000;
/** What the relay advertises and enforces for that upstream: its SIZE less room for the headers we add on the way out */
const EFFECTIVE = UPSTREAM_SIZE - 2048;

const message = (subject: string, bodyBytes = 100) =>
  `From: scanner@office.test\r\nSubject: ${subject}\r\n\r\n${'x'.repeat(bodyBytes)}\r\n`;

/**
 * A device's session with smtplib: EHLO, MAIL with the given options, each
 * RCPT, and DATA when any recipient was accepted. Prints one JSON object with
 * the SIZE advertised and every reply.
 */
const SESSION = `
import json, smtplib, sys
port, sender, rcpts, options = int(sys.argv[1]), sys.argv[2], sys.argv[3].split(','), [o for o in sys.argv[4].split(',') if o]
data = sys.stdin.buffer.read()
s = smtplib.SMTP('127.0.0.1', port, timeout=30)
s.ehlo('scanner.lan')
out = {'size': s.esmtp_features.get('size'), 'rcpt': []}
code, text = s.mail(sender, options)
out['mail'] = '%d %s' % (code, text.decode())
if code == 250:
    for r in rcpts:
        code, text = s.rcpt(r)
        out['rcpt'].append('%d %s' % (code, text.decode()))
    if any(r.startswith('250') for r in out['rcpt']):
        code, text = s.data(data)
        out['data'] = '%d %s' % (code, text.decode())
s.quit()
print(json.dumps(out))
`;

interface Session {
  size: string | null;
  mail: string;
  rcpt: string[];
  data?: string;
}

async function session(
  port: number,
  to: string[],
  data: string,
  options: string[] = [],
): Promise<Session> {
  const result = await python(
    SESSION,
    [String(port), 'scanner@office.test', to.join(','), options.join(',')],
    data,
  );
  assert.equal(result.code, 0, result.stderr);
  return JSON.parse(result.stdout) as Session;
}

const learned = (relay: RunningRelay, host: string) =>
  relay.waitForLog(
    (l) =>
      l.msg === 'Learned the message size limit of an upstream from its EHLO' &&
      l.bytes === UPSTREAM_SIZE &&
      l.host === host,
  );

async function queued(relay: RunningRelay): Promise<unknown[]> {
  const result = await relay.cli(['queue', 'list', '--json']);
  assert.equal(result.code, 0, result.stderr);
  return JSON.parse(result.stdout) as unknown[];
}

describe("smarthost: the upstream's SIZE, learned and enforced", () => {
  let upstream: Upstream;
  let relay: RunningRelay;
  const config = () => viaSmarthost(upstream);

  before(async () => {
    upstream = await startUpstream({ extra: { size: UPSTREAM_SIZE } });
    relay = await launchRelay({ config: config() });
  });

  after(async () => {
    await relay?.stop();
    await upstream?.close();
  });

  test("after one delivery the relay advertises the upstream's limit, not its own", async () => {
    const before = await session(relay.smtpPort, ['ops@example.com'], message('first'));
    assert.equal(before.size, String(52_428_800), 'nothing learned yet: our own limit');
    assert.match(before.data ?? '', /^250 /);
    await upstream.waitFor(1);
    await learned(relay, '127.0.0.1');
    const after = await session(relay.smtpPort, ['ops@example.com'], message('second'));
    assert.equal(after.size, String(EFFECTIVE));
    await upstream.waitFor(2);
  });

  test("the dashboard shows the upstream's limit where it shows the upstream", async () => {
    const admin = await setupAdminOf(relay);
    const status = JSON.parse((await admin.get('/api/status')).text) as {
      upstream: { sizeLimit: { bytes: number; name: string } | null };
    };
    assert.deepEqual(status.upstream.sizeLimit, { bytes: UPSTREAM_SIZE, name: '127.0.0.1' });
    assert.match(
      (await admin.get('/')).text,
      /<dt>Largest message<\/dt><dd id="upstream-size">98 KB /,
    );
  });

  test('a declared size over our own limit is refused at MAIL with 552 5.3.4 and a sentence', async () => {
    const refused = await session(relay.smtpPort, ['ops@example.com'], message('huge'), [
      'SIZE=60000000',
    ]);
    assert.equal(
      refused.mail,
      '552 5.3.4 Message is 57.2 MB; this relay accepts at most 50 MB. Scan at a lower resolution or fewer pages',
    );
  });

  test("a declared size over the upstream's limit: the remote recipient is refused at RCPT, the local mailbox still accepts", async () => {
    const result = await session(
      relay.smtpPort,
      ['ops@example.com', 'postmaster@relay.test'],
      message('declared', 200_000),
      ['SIZE=200200'],
    );
    assert.match(result.mail, /^250 /, 'the message may still be for a local mailbox');
    assert.equal(
      result.rcpt[0],
      '552 5.3.4 Message is 196 KB; the upstream 127.0.0.1 accepts at most 98 KB. Scan at a lower resolution or fewer pages',
    );
    assert.match(result.rcpt[1] ?? '', /^250 /);
    assert.match(result.data ?? '', /^250 .*queued as/);
    await eventually('the local copy in the postmaster mailbox', () =>
      newMail(relay, 'postmaster').some((text) => text.includes('Subject: declared')),
    );
  });

  test('without SIZE=, a message too large for the upstream gets 552 5.3.4 at the end of DATA and nothing is queued', async () => {
    const before = upstream.dataAttempts;
    const result = await session(
      relay.smtpPort,
      ['ops@example.com'],
      message('undeclared', 200_000),
    );
    assert.equal(
      result.data,
      '552 5.3.4 Message is 195 KB; the upstream 127.0.0.1 accepts at most 98 KB. Scan at a lower resolution or fewer pages',
    );
    assert.deepEqual(await queued(relay), []);
    assert.equal(upstream.dataAttempts, before, 'nothing went to the upstream');
  });

  test('local and remote recipients together: one reply for the message, so it is refused for both', async () => {
    const result = await session(
      relay.smtpPort,
      ['ops@example.com', 'postmaster@relay.test'],
      message('mixed', 200_000),
    );
    assert.match(
      result.data ?? '',
      /^552 5\.3\.4 Message is 195 KB; the upstream 127\.0\.0\.1 accepts at most 98 KB/,
    );
    assert.ok(!newMail(relay, 'postmaster').some((text) => text.includes('Subject: mixed')));
  });

  test('a large message for a local mailbox alone is accepted', async () => {
    const reply = await smtplibSend(
      relay.smtpPort,
      'scanner@office.test',
      ['postmaster@relay.test'],
      message('local only', 200_000),
    );
    assert.match(reply, /^250 /);
  });

  test('the learned limit survives a restart, and is written once, not per delivery', async () => {
    const file = path.join(relay.dataDir, 'upstream-limits.json');
    assert.ok(existsSync(file));
    const written = readFileSync(file, 'utf8');
    assert.deepEqual(
      Object.values(JSON.parse(written) as Record<string, { bytes: number; name: string }>).map(
        ({ bytes, name }) => ({ bytes, name }),
      ),
      [{ bytes: UPSTREAM_SIZE, name: '127.0.0.1' }],
    );
    await relay.stop();
    relay = await launchRelay({ dir: relay.dir, config: config() });
    const fresh = await session(
      relay.smtpPort,
      ['ops@example.com'],
      message('after restart', 200_000),
    );
    assert.equal(fresh.size, String(EFFECTIVE), 'known before any delivery of this run');
    assert.match(fresh.data ?? '', /^552 5\.3\.4 /);
    await smtplibSend(
      relay.smtpPort,
      'scanner@office.test',
      ['ops@example.com'],
      message('small again'),
    );
    await upstream.waitFor(3);
    assert.equal(
      readFileSync(file, 'utf8'),
      written,
      'same limit heard again: the file is not rewritten',
    );
  });
});

describe("MX mode: each destination domain's limit", () => {
  const HOSTS = { small: '127.0.0.70', roomy: '127.0.0.71' } as const;
  let dns: DnsServer;
  let relay: RunningRelay;
  let small: Upstream;
  let roomy: Upstream;

  before(async () => {
    const port = await freePortOn(Object.values(HOSTS));
    small = await startUpstream({ host: HOSTS.small, port, extra: { size: UPSTREAM_SIZE } });
    roomy = await startUpstream({ host: HOSTS.roomy, port });
    dns = await startDnsServer({
      'small.test': [{ type: 'MX', preference: 10, exchange: 'mx.small.test' }],
      'mx.small.test': [{ type: 'A', address: HOSTS.small }],
      'roomy.test': [{ type: 'MX', preference: 10, exchange: 'mx.roomy.test' }],
      'mx.roomy.test': [{ type: 'A', address: HOSTS.roomy }],
    });
    relay = await launchRelay({
      config: {
        delivery: {
          mode: 'mx',
          mx: { port, tls: 'may' },
          dns: { servers: [dns.address], timeout: '1s' },
          tls: { caFile: makeCerts().caFile },
        },
      },
    });
  });

  after(async () => {
    await relay?.stop();
    await Promise.all([small?.close(), roomy?.close()]);
    await dns?.close();
  });

  test("learned per domain: a declared size too large for one domain's MX refuses only its recipients, EHLO keeps our own limit", async () => {
    await smtplibSend(
      relay.smtpPort,
      'scanner@office.test',
      ['a@small.test', 'b@roomy.test'],
      message('learn'),
    );
    await Promise.all([small.waitFor(1), roomy.waitFor(1)]);
    await learned(relay, 'mx.small.test for small.test');
    const result = await session(
      relay.smtpPort,
      ['a@small.test', 'b@roomy.test'],
      message('big', 200_000),
      ['SIZE=200200'],
    );
    assert.equal(
      result.size,
      String(52_428_800),
      'the upstream differs per domain: EHLO says our own limit',
    );
    assert.equal(
      result.rcpt[0],
      '552 5.3.4 Message is 196 KB; the upstream mx.small.test for small.test accepts at most 98 KB. Scan at a lower resolution or fewer pages',
    );
    assert.match(result.rcpt[1] ?? '', /^250 /);
    assert.match(result.data ?? '', /^250 /);
    const [, big] = await roomy.waitFor(2);
    assert.deepEqual(big?.to, ['b@roomy.test']);
  });
});
