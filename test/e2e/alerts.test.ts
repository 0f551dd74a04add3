/**
 * Alerts end to end: the upstream is down longer than a short threshold ->
 * exactly one alert in the postmaster mailbox and one webhook call (with the
 * fields ntfy, Apprise and Teams-style receivers read); the queue grows past
 * its threshold -> one queue alert; the upstream comes back -> exactly one
 * "recovered" of each, and nothing more while all is well. /metrics shows
 * the upstream as down (0) and then up (1).
 */
import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { makeCerts } from '../support/certs.js';
import { smtplibSend } from '../support/clients.js';
import { launchRelay, type RunningRelay } from '../support/relay.js';
import { startUpstream, type Upstream } from '../support/upstream.js';
import { eventually } from '../support/wait.js';

interface Hook {
  title: string;
  message: string;
  text: string;
  state: 'firing' | 'recovered';
  kind: 'upstream' | 'queue';
  host: string;
  at: string;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
/** Alerts fire after a threshold of seconds: allow for it */
const ALERT_WAIT = { timeoutMs: 30_000 };

describe('upstream alerts', () => {
  const hooks: Hook[] = [];
  let receiver: http.Server;
  let upstream: Upstream | undefined;
  let relay: RunningRelay;
  let port: number;
  let token = '';

  const hooksOf = (kind: Hook['kind'], state?: Hook['state']) =>
    hooks.filter((h) => h.kind === kind && (!state || h.state === state));
  const upstreamUp = async (): Promise<number> => {
    // A metrics token, made the way a monitoring admin would (not in before(): the clock of the threshold runs from the start)
    token ||=
      /^er_\S+$/m.exec((await relay.cli(['admin', 'token', 'create', 'monitoring'])).stdout)?.[0] ??
      '';
    const response = await fetch(`http://127.0.0.1:${relay.webPort}/metrics`, {
      headers: { authorization: `Bearer ${token}` },
    });
    assert.equal(response.status, 200);
    return Number(/^edge_relay_upstream_up (-?\d+)$/m.exec(await response.text())?.[1]);
  };

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
    relay = await launchRelay({
      config: {
        delivery: {
          smarthost: { host: '127.0.0.1', port, security: 'starttls' },
          tls: { verify: true, caFile: makeCerts().caFile },
        },
        alerts: {
          upstreamFailingFor: '3s',
          queueThreshold: 2,
          webhook: `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hook`,
        },
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
    await smtplibSend(
      relay.smtpPort,
      'nas@office.test',
      ['ops@example.com'],
      'Subject: backup done\r\n\r\nok\r\n',
    );
    await eventually('the alert webhook', () => hooks[0], ALERT_WAIT);
    assert.ok(
      Date.now() - started >= 2_500,
      `not before the threshold (${Date.now() - started} ms)`,
    );
    const hook = hooks[0];
    assert.equal(hook?.state, 'firing');
    assert.equal(hook.kind, 'upstream');
    assert.equal(hook.title, '[edge-relay] Upstream failing for more than 3s');
    assert.match(
      hook.message,
      /^edge-relay on relay\.test has not been able to deliver to the upstream since \d{4}-\d\d-\d\dT/,
    );
    assert.match(hook.message, /Messages wait safely in the queue \(1 now\)/);
    assert.match(
      hook.message,
      new RegExp(`\\nLast error \\(\\d{4}-.*\\): .*ECONNREFUSED 127\\.0\\.0\\.1:${port}`),
    );
    assert.equal(
      hook.text,
      `${hook.title}\n${hook.message}`,
      'text: title and message for Teams-style receivers',
    );
    assert.equal(hook.host, 'relay.test');
    assert.ok(Math.abs(Date.parse(hook.at) - Date.now()) < 60_000);
    assert.equal(await upstreamUp(), 0, 'edge_relay_upstream_up is 0 while the upstream is down');
    // Several more failed retries (1 s apart), each followed by an alert check, must not alert again
    const deferrals = () => relay.logs.filter((l) => l.msg === 'Message deferred').length;
    const seen = deferrals();
    await relay.waitForLog(() => deferrals() >= seen + 3, 15_000);
    assert.equal(hooks.length, 1, 'exactly one webhook call');
    const mail = await postmasterMail();
    assert.equal(mail.length, 1, 'exactly one alert in the postmaster mailbox');
    assert.match(mail[0] ?? '', /^Subject: \[edge-relay\] Upstream failing for more than 3s\r$/m);
    assert.match(mail[0] ?? '', /127\.0\.0\.1:\d+/, 'the alert names the last error');
  });

  test('the queue growing past its threshold (2) sends one queue alert', async () => {
    for (const n of [2, 3])
      await smtplibSend(
        relay.smtpPort,
        'nas@office.test',
        ['ops@example.com'],
        `Subject: backup ${n}\r\n\r\nok\r\n`,
      );
    const hook = await eventually('the queue webhook', () => hooksOf('queue')[0], ALERT_WAIT);
    assert.equal(hook.state, 'firing');
    assert.equal(hook.title, '[edge-relay] Queue above 2 messages');
    assert.match(hook.message, /has 3 messages waiting \(alert threshold 2\)/);
    // No repeats: the last test counts every call after a quiet spell
    assert.equal(hooksOf('upstream').length, 1);
    assert.ok(
      (await postmasterMail()).some((m) =>
        /^Subject: \[edge-relay\] Queue above 2 messages\r$/m.test(m),
      ),
    );
  });

  test('one "recovered" notice of each when the upstream is back, then quiet', async () => {
    upstream = await startUpstream({ port, requireTls: true });
    await upstream.waitFor(3, 30_000);
    const recovered = await eventually(
      'the recovered webhook',
      () => hooksOf('upstream', 'recovered')[0],
      ALERT_WAIT,
    );
    assert.match(recovered.message, /^edge-relay on relay\.test reached the upstream again at /);
    await eventually(
      'the queue recovered webhook',
      () => hooksOf('queue', 'recovered')[0],
      ALERT_WAIT,
    );
    assert.equal(await upstreamUp(), 1, 'edge_relay_upstream_up is 1 again');
    await sleep(3_000);
    assert.equal(
      hooks.length,
      4,
      'one firing and one recovered for the upstream and for the queue',
    );
    const mail = await postmasterMail();
    assert.equal(mail.length, 4);
    assert.ok(mail.some((m) => /^Subject: \[edge-relay\] Upstream recovered\r$/m.test(m)));
    assert.ok(mail.some((m) => /^Subject: \[edge-relay\] Queue back to normal\r$/m.test(m)));
  });
});
