/** Pre-flight verdicts against a real DNS server on loopback */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { resolveConfig } from '../../src/config/validate.js';
import { Dns } from '../../src/deliver/dns.js';
import { preflight, type Check } from '../../src/deliver/preflight.js';
import { startDnsServer, type DnsServer } from '../support/dns-server.js';

describe('preflight', () => {
  let server: DnsServer;
  before(async () => {
    server = await startDnsServer({
      'good.test': [
        { type: 'MX', preference: 10, exchange: 'good-test.mail.protection.outlook.com' },
        { type: 'TXT', text: 'v=spf1 include:_spf.good.test -all' },
        { type: 'TXT', text: 'MS=ms12345' },
      ],
      '_spf.good.test': [
        { type: 'TXT', text: 'v=spf1 ip4:192.0.2.0/24 include:spf.protection.outlook.com -all' },
      ],
      'spf.protection.outlook.com': [{ type: 'TXT', text: 'v=spf1 ip4:40.92.0.0/15 -all' }],
      '_dmarc.good.test': [{ type: 'TXT', text: 'v=DMARC1; p=reject; rua=mailto:d@good.test' }],
      'sel._domainkey.good.test': [{ type: 'TXT', text: 'v=DKIM1; k=rsa; p=MIIBgood' }],
      'bad.test': [{ type: 'TXT', text: 'v=spf1 include:_spf.google.com ~all' }],
      '_spf.google.com': [{ type: 'TXT', text: 'v=spf1 ip4:35.190.247.0/24 ~all' }],
      'double.test': [
        { type: 'MX', preference: 0, exchange: 'mx.double.test' },
        { type: 'TXT', text: 'v=spf1 -all' },
        { type: 'TXT', text: 'v=spf1 mx -all' },
      ],
      '_dmarc.double.test': [{ type: 'TXT', text: 'v=DMARC1; p=none' }],
      'broken.test': 'servfail',
    });
  });
  after(() => server.close());

  const config = (host: string) =>
    resolveConfig(
      { delivery: { smarthost: { host }, dns: { servers: [server.address], timeout: '2s' } } },
      'test',
    );
  const check = (checks: Check[], name: Check['name']) => checks.find((c) => c.name === name);

  test('all good for Microsoft 365: the include is found through a nested include; DKIM key matches', async () => {
    const result = await preflight(
      new Dns(() => config('smtp.office365.com')),
      config('smtp.office365.com'),
      'Good.Test.',
      { selector: 'sel', publicKey: 'MIIBgood' },
    );
    assert.equal(result.domain, 'good.test');
    assert.equal(result.status, 'ok', JSON.stringify(result.checks));
    assert.match(
      check(result.checks, 'spf')?.summary ?? '',
      /includes Microsoft 365 \(spf\.protection\.outlook\.com\)/,
    );
    assert.match(
      check(result.checks, 'dmarc')?.summary ?? '',
      /p=reject.*Turn on sender alignment/,
    );
    assert.match(
      check(result.checks, 'mx')?.summary ?? '',
      /good-test\.mail\.protection\.outlook\.com/,
    );
    assert.equal(check(result.checks, 'dkim')?.status, 'ok');
  });

  test('SPF without the upstream, no MX, no DMARC: each said with its fix', async () => {
    const result = await preflight(
      new Dns(() => config('smtp.office365.com')),
      config('smtp.office365.com'),
      'bad.test',
      { selector: 'sel', publicKey: 'MIIBmine' },
    );
    assert.equal(result.status, 'problem');
    const spf = check(result.checks, 'spf');
    assert.equal(spf?.status, 'problem');
    assert.match(spf?.summary ?? '', /SPF does not include your upstream \(Microsoft 365\)/);
    assert.equal(spf?.fix, 'Add include:spf.protection.outlook.com to the SPF record of bad.test');
    assert.equal(check(result.checks, 'mx')?.status, 'warning');
    assert.equal(check(result.checks, 'dmarc')?.status, 'warning');
    assert.match(check(result.checks, 'dmarc')?.fix ?? '', /_dmarc\.bad\.test: "v=DMARC1; p=none/);
    assert.equal(check(result.checks, 'dkim')?.status, 'problem');
    assert.match(
      check(result.checks, 'dkim')?.fix ?? '',
      /sel\._domainkey\.bad\.test: "v=DKIM1; k=rsa; p=MIIBmine"/,
    );
  });

  test('Google upstream: the same domain passes SPF', async () => {
    const result = await preflight(
      new Dns(() => config('smtp.gmail.com')),
      config('smtp.gmail.com'),
      'bad.test',
    );
    assert.equal(check(result.checks, 'spf')?.status, 'ok');
    assert.equal(result.checks.length, 3, 'no DKIM check when not signing');
  });

  test('two SPF records are a permerror; p=none is monitoring', async () => {
    const result = await preflight(
      new Dns(() => config('smtp.office365.com')),
      config('smtp.office365.com'),
      'double.test',
    );
    assert.match(check(result.checks, 'spf')?.summary ?? '', /2 SPF records.*permerror/);
    assert.match(check(result.checks, 'dmarc')?.summary ?? '', /monitoring only/);
  });

  test('a DNS failure is "unknown", not a verdict', async () => {
    const result = await preflight(
      new Dns(() => config('smtp.office365.com')),
      config('smtp.office365.com'),
      'broken.test',
    );
    assert.equal(check(result.checks, 'spf')?.status, 'unknown');
    assert.equal(check(result.checks, 'mx')?.status, 'unknown');
  });

  test('a nonexistent domain is a problem', async () => {
    const result = await preflight(
      new Dns(() => config('smtp.office365.com')),
      config('smtp.office365.com'),
      'nope.test',
    );
    assert.equal(check(result.checks, 'mx')?.status, 'problem');
    assert.match(check(result.checks, 'mx')?.summary ?? '', /does not exist/);
  });
});
