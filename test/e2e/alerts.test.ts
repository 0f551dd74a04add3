/**
 * Alerts end to end: the upstream is down longer than a short threshold ->
 * exactly one alert in the postmaster mailbox and one webhook call (with the
 * fields ntfy, Apprise and Teams-style receivers read); the queue grows past
 * its threshold -> one queue alert; the upstream comes back -> exactly one
 * "recovered" of each, and nothing more while all is well. /metrics shows
 * the upstream as down (0) and then up (1). Each test runs its own relay (at
 * once, side by side); "nothing more" is judged by the alert checks the relay
 * logs at debug level, not by a quiet spell.
 */
import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { describe, test } from 'node:test';
import { makeCerts } from '../support/certs.js';
import { smtplibSend } from '../support/clients.js';
import { launchRelay } from '../support/relay.js';
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

/** Alerts fire after a threshold of seconds: allow for it */
const ALERT_WAIT = { timeoutMs: 30_000 };

/** A relay whose upstream is down (a reserved port left closed), with a webhook receiver */
async function outage() {
  const hooks: Hook[] = [];
  const receiver = http.createServer((req, res) => {
    let body = '';
    req.on('data', (d: Buffer) => (body += d));
    req.on('end', () => {
      hooks.push(JSON.parse(body) as Hook);
      res.end('ok');
    });
  });
  await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
  const probe = await startUpstream();
  const port = probe.port;
  await probe.close();
  const relay = await launchRelay({
    // "Alerts checked" is a debug line: the proof that a check ran and found nothing to send
    env: { EDGE_RELAY_LOG_LEVEL: 'debug' },
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
  let upstream: Upstream | undefined;
  let token = '';

  const send = (subject: string) =>
    smtplibSend(
      relay.smtpPort,
      'nas@office.test',
      ['ops@example.com'],
      `Subject: ${subject}\r\n\r\nok\r\n`,
    );
  const hooksOf = (kind: Hook['kind'], state?: Hook['state']) =>
    hooks.filter((h) => h.kind === kind && (!state || h.state === state));
  const upstreamUp = async (): Promise<number> => {
    // A metrics token, made the way a monitoring admin would
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
  /**
   * Waits for `count` alert checks that began after `since` (a notice's `at`):
   * each judged the alerts again, and whatever it sent is in `hooks` by the
   * time its line is logged (the relay awaits the webhook's answer first)
   */
  const checksAfter = (since: string, count: number) =>
    relay.waitForLog(
      () =>
        relay.logs.filter(
          (l) => l.msg === 'Alerts checked' && Date.parse(String(l.at)) > Date.parse(since),
        ).length >= count,
      ALERT_WAIT.timeoutMs,
    );
  const startUpstreamAgain = async () => {
    upstream = await startUpstream({ port, requireTls: true });
    return upstream;
  };
  const close = async () => {
    await relay.stop();
    await upstream?.close();
    await new Promise((resolve) => receiver.close(resolve));
  };
  return {
    relay,
    port,
    hooks,
    send,
    hooksOf,
    upstreamUp,
    postmasterMail,
    checksAfter,
    startUpstreamAgain,
    close,
  };
}

describe('upstream alerts', { concurrency: true }, () => {
  test('one alert after the threshold, none before, no repeats', async () => {
    const { port, hooks, send, upstreamUp, postmasterMail, checksAfter, close } = await outage();
    try {
      const started = Date.now();
      await send('backup done');
      const hook = await eventually('the alert webhook', () => hooks[0], ALERT_WAIT);
      assert.ok(
        Date.now() - started >= 2_500,
        `not before the threshold (${Date.now() - started} ms)`,
      );
      assert.equal(hook.state, 'firing');
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
      // The failed retries go on (1 s apart), each asking for a check: the next one must not alert again
      await checksAfter(hook.at, 1);
      assert.equal(hooks.length, 1, 'exactly one webhook call');
      const mail = await postmasterMail();
      assert.equal(mail.length, 1, 'exactly one alert in the postmaster mailbox');
      assert.match(mail[0] ?? '', /^Subject: \[edge-relay\] Upstream failing for more than 3s\r$/m);
      assert.match(mail[0] ?? '', /127\.0\.0\.1:\d+/, 'the alert names the last error');
    } finally {
      await close();
    }
  });

  test('the queue growing past its threshold (2) sends one queue alert', async () => {
    const { send, hooksOf, postmasterMail, checksAfter, close } = await outage();
    try {
      for (const n of [1, 2, 3]) await send(`backup ${n}`);
      const hook = await eventually('the queue webhook', () => hooksOf('queue')[0], ALERT_WAIT);
      assert.equal(hook.state, 'firing');
      assert.equal(hook.title, '[edge-relay] Queue above 2 messages');
      assert.match(hook.message, /has 3 messages waiting \(alert threshold 2\)/);
      // No repeats while the queue stays above its threshold: the next check sends no second one
      await checksAfter(hook.at, 1);
      assert.equal(hooksOf('queue').length, 1, 'one queue alert');
      assert.ok(hooksOf('upstream').length <= 1, 'at most the one upstream alert');
      assert.ok(
        (await postmasterMail()).some((m) =>
          /^Subject: \[edge-relay\] Queue above 2 messages\r$/m.test(m),
        ),
      );
    } finally {
      await close();
    }
  });

  test('one "recovered" notice of each when the upstream is back, then quiet', async () => {
    const {
      hooks,
      send,
      hooksOf,
      upstreamUp,
      postmasterMail,
      checksAfter,
      startUpstreamAgain,
      close,
    } = await outage();
    try {
      for (const n of [1, 2, 3]) await send(`backup ${n}`);
      await eventually('the upstream alert', () => hooksOf('upstream', 'firing')[0], ALERT_WAIT);
      await eventually('the queue alert', () => hooksOf('queue', 'firing')[0], ALERT_WAIT);
      const upstream = await startUpstreamAgain();
      await upstream.waitFor(3, 30_000);
      const recovered = await eventually(
        'the recovered webhook',
        () => hooksOf('upstream', 'recovered')[0],
        ALERT_WAIT,
      );
      assert.match(recovered.message, /^edge-relay on relay\.test reached the upstream again at /);
      const queueRecovered = await eventually(
        'the queue recovered webhook',
        () => hooksOf('queue', 'recovered')[0],
        ALERT_WAIT,
      );
      assert.equal(await upstreamUp(), 1, 'edge_relay_upstream_up is 1 again');
      // Quiet: one more message goes through, and the check its delivery asks for sends nothing
      await send('all well');
      await upstream.waitFor(4, 30_000);
      const last = [recovered.at, queueRecovered.at].sort().at(-1)!;
      await checksAfter(last, 1);
      assert.equal(
        hooks.length,
        4,
        'one firing and one recovered for the upstream and for the queue',
      );
      const mail = await postmasterMail();
      assert.equal(mail.length, 4);
      assert.ok(mail.some((m) => /^Subject: \[edge-relay\] Upstream recovered\r$/m.test(m)));
      assert.ok(mail.some((m) => /^Subject: \[edge-relay\] Queue back to normal\r$/m.test(m)));
    } finally {
      await close();
    }
  });
});
