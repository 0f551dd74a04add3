/**
 * Upstream faults: every way a smarthost can fail ends in a deferral with a
 * lastError a person can act on, the message stays queued, and a message the
 * upstream answered 250 to is never sent to it again.
 */
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { makeCerts } from '../support/certs.js';
import { smtplibSend } from '../support/clients.js';
import {
  queueList,
  refusedPort,
  startBadUpstream,
  type BadBehaviour,
  type QueueItem,
} from '../support/faults.js';
import { eventually } from '../support/wait.js';
import { launchRelay, type RunningRelay } from '../support/relay.js';
import { startUpstream } from '../support/upstream.js';
import { queuedId } from '../support/queued.js';

type Security = 'none' | 'starttls';

const started: { close(): Promise<unknown> }[] = [];

async function relayTo(port: number, security: Security): Promise<RunningRelay> {
  const relay = await launchRelay({
    config: {
      delivery: {
        smarthost: { host: '127.0.0.1', port, security },
        tls: { verify: true, caFile: makeCerts().caFile },
        timeout: '2s',
        retry: { delays: ['1s'], maxAge: '5d' },
      },
    },
  });
  started.push({ close: () => relay.stop() });
  return relay;
}

async function sendOne(relay: RunningRelay, subject: string): Promise<string> {
  const reply = await smtplibSend(
    relay.smtpPort,
    'ups@office.test',
    ['ops@example.com'],
    `Subject: ${subject}\r\n\r\nbody\r\n`,
  );
  return queuedId(reply);
}

/** Waits until the message has been tried and deferred; returns its queue entry */
async function deferred(relay: RunningRelay, id: string, timeoutMs = 20_000): Promise<QueueItem> {
  return eventually(
    `message ${id} deferred with a lastError`,
    async () => {
      const item = (await queueList(relay)).find((i) => i.id === id);
      return item && item.attempts >= 1 && item.lastError ? item : undefined;
    },
    { timeoutMs, everyMs: 250 },
  );
}

function assertDeferred(item: QueueItem, expected: RegExp): void {
  console.log(`fault-upstream: lastError ${JSON.stringify(item.lastError)}`);
  assert.deepEqual(
    item.recipients.map((r) => r.status),
    ['deferred'],
    JSON.stringify(item),
  );
  assert.match(item.lastError ?? '', expected);
  assert.match(item.lastError ?? '', /127\.0\.0\.1:\d+/, 'lastError names the upstream');
}

const socketFaults: [string, BadBehaviour, RegExp][] = [
  ['accepts the connection, then never speaks', 'silent', /greeting|timed? ?out|ETIMEDOUT/i],
  ['answers 421 at the greeting', 'greet421', /^421 /],
  // Postfix defers a 5xx greeting too (smtp_skip_5xx_greeting): it says nothing about the message
  ['answers 554 at the greeting', 'greet554', /^554 5\.3\.2 /],
  [
    'drops the connection in the middle of DATA',
    'dropMidData',
    /closed|ECONNRESET|ESOCKET|EPIPE|unexpected/i,
  ],
  [
    'takes the whole message, then never answers the final dot',
    'hangAfterData',
    /timed? ?out|ETIMEDOUT/i,
  ],
];

describe('upstream faults are deferrals with a clear lastError', { concurrency: 3 }, () => {
  after(async () => {
    await Promise.all(started.map((s) => s.close()));
  });

  test('refuses connections', async () => {
    const relay = await relayTo(await refusedPort(), 'none');
    const item = await deferred(relay, await sendOne(relay, 'refused'));
    assertDeferred(item, /ECONNREFUSED|refused/i);
  });

  for (const [name, behaviour, expected] of socketFaults) {
    test(name, async () => {
      const upstream = await startBadUpstream(behaviour);
      started.push(upstream);
      const relay = await relayTo(upstream.port, 'none');
      const item = await deferred(relay, await sendOne(relay, behaviour));
      assertDeferred(item, expected);
      assert.ok(upstream.connections >= 1, 'the relay did connect');
    });
  }

  test('replies at one byte a second: the attempt is cut off by delivery.timeout and deferred', async () => {
    const upstream = await startBadUpstream('slow', { slowMs: 1000 });
    started.push(upstream);
    const relay = await relayTo(upstream.port, 'none');
    const id = await sendOne(relay, 'slow');
    const began = Date.now();
    // A whole transaction at 1 byte/s takes minutes; delivery.timeout is 2 s
    const item = await deferred(relay, id, 15_000);
    assertDeferred(item, /timed? ?out|ETIMEDOUT/i);
    assert.ok(Date.now() - began < 15_000);
  });

  for (const certificate of ['selfsigned', 'expired', 'wrongname'] as const) {
    test(`presents a ${certificate} certificate: nothing is sent, the message waits`, async () => {
      const upstream = await startUpstream({ certificate, requireTls: true });
      started.push(upstream);
      const relay = await relayTo(upstream.port, 'starttls');
      const item = await deferred(relay, await sendOne(relay, certificate));
      const reason = {
        selfsigned: /self[- ]signed|unable to verify|certificate/i,
        expired: /expired/i,
        wrongname: /altnames|hostname|does not match|not-this-host/i,
      }[certificate];
      assertDeferred(item, reason);
      assert.equal(upstream.messages.length, 0, 'no message went to an unverified upstream');
    });
  }

  test('answers 250 then drops the connection before QUIT: delivered once, never sent again', async () => {
    const upstream = await startBadUpstream('dropAfter250');
    started.push(upstream);
    const relay = await relayTo(upstream.port, 'none');
    const id = await sendOne(relay, 'once');
    const ofIt = (msg: string) => relay.logs.filter((l) => l.queueId === id && l.msg === msg);
    await relay.waitForLog(() => ofIt('Message done, removed from the queue').length > 0);
    assert.deepEqual(await queueList(relay), [], 'the queue is empty');
    // Done in its first attempt: the 250 counted, the dropped connection did not turn it into a deferral
    assert.deepEqual(
      ofIt('Message done, removed from the queue').map((l) => l.attempts),
      [1],
    );
    assert.equal(ofIt('Recipient delivered').length, 1);
    // Nothing is left that could go again: each attempt starts from the spool, and a retry of everything finds nothing
    const retried = await relay.cli(['queue', 'retry', '--all']);
    assert.equal(retried.stdout.trim(), 'Retrying 0 messages now', retried.stderr);
    // The next message takes the same path to the same upstream: the first is not sent along with it
    const next = await sendOne(relay, 'next');
    await relay.waitForLog(
      (l) => l.queueId === next && l.msg === 'Message done, removed from the queue',
    );
    assert.equal(upstream.accepted, 2, `message ${id} was accepted ${upstream.accepted - 1} times`);
    assert.equal(ofIt('Recipient delivered').length, 1, `message ${id} was delivered again`);
  });
});
