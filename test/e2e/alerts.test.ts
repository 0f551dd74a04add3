/**
 * Alerts end to end: the upstream is down longer than a short threshold ->
 * exactly one alert in the postmaster mailbox and one webhook call; it comes
 * back -> exactly one "recovered", and nothing more while all is well.
 */
import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { makeCerts } from '../support/certs.js';
import { smtplibSend } from '../support/clients.js';
import { startRelay, type RunningRelay } from '../support/relay.js';
import { startUpstream, type Upstream } from '../support/upstream.js';

interface Hook {
  title: string;
  state: 'firing' | 'recovered';
  kind: string;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function until<T>(what: string, check: () => Promise<T | undefined> | T | undefined, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const value = await check();
    if (value !== undefined) return value;
    await sleep(200);
  }
  throw new Error(`Timed out waiting for ${what}`);
}

describe('upstream alerts', () => {
  const hooks: Hook[] = [];
  let receiver: http.Server;
  let upstream: Upstream | undefined;
  let relay: RunningRelay;
  let port: number;

  const postmasterMail = async (): Promise<string[]> => {
    const dir = path.join(relay.dataDir, 'mailboxes', 'postmaster', 'new');
    const names = await fs.readdir(dir);
    return Promise.all(names.sort().map((name) => fs.readFile(path.join(dir, name), 'utf8')));
  };

  before(async () => {
    receiver = http.createServer((req, res) => {
      let body = '';
      req.on('data', (d: Buffer) => (body += d));
      req.on('end', () => {
        hooks.push(JSON.parse(body) as Hook);
        res.end('ok');
      });
    });
    await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
    // Reserve a port for the upstream, then leave it closed: the upstream is "down"
    const probe = await startUpstream();
    port = probe.port;
    await probe.close();
    relay = await startRelay({
      config: {
        delivery: { smarthost: { host: '127.0.0.1', port, security: 'starttls' }, tls: { verify: true, caFile: makeCerts().caFile } },
        alerts: { upstreamFailingFor: '3s', webhook: `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hook` },
      },
    });
  });
  after(async () => {
    await relay.stop();
    await upstream?.close();
    await new Promise((resolve) => receiver.close(resolve));
  });

  test('one alert after the threshold, none before, no repeats', async () => {
    const started = Date.now();
    await smtplibSend(relay.smtpPort, 'nas@office.test', ['ops@example.com'], 'Subject: backup done\r\n\r\nok\r\n');
    await until('the alert webhook', () => hooks[0]);
    assert.ok(Date.now() - started >= 2_500, `not before the threshold (${Date.now() - started} ms)`);
    assert.equal(hooks[0]?.state, 'firing');
    assert.equal(hooks[0]?.kind, 'upstream');
    assert.match(hooks[0]?.title ?? '', /Upstream failing for more than 3s/);
    // Several more failed retries (1 s apart) and alert checks must not alert again
    await sleep(5_000);
    assert.equal(hooks.length, 1, 'exactly one webhook call');
    const mail = await postmasterMail();
    assert.equal(mail.length, 1, 'exactly one alert in the postmaster mailbox');
    assert.match(mail[0] ?? '', /^Subject: \[edge-relay\] Upstream failing for more than 3s\r$/m);
    assert.match(mail[0] ?? '', /127\.0\.0\.1:\d+/, 'the alert names the last error');
  });

  test('one "recovered" notice when the upstream is back, then quiet', async () => {
    upstream = await startUpstream({ port, requireTls: true });
    await upstream.waitFor(1, 30_000);
    await until('the recovered webhook', () => hooks[1]);
    assert.equal(hooks[1]?.state, 'recovered');
    await sleep(3_000);
    assert.equal(hooks.length, 2);
    const mail = await postmasterMail();
    assert.equal(mail.length, 2);
    assert.ok(mail.some((m) => /^Subject: \[edge-relay\] Upstream recovered\r$/m.test(m)));
  });
});
