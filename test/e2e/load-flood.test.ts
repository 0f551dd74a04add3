/**
 * Connection flood on loopback: 500 connections that never speak and 50
 * slow-loris senders (one byte every 400 ms) at once. A real device is still
 * served promptly, and the silent connections are closed by the idle timeout.
 * Counts scale with FLOOD_IDLE / FLOOD_LORIS (`make soak` uses more).
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { RawSmtp, smtplibSend } from '../support/clients.js';
import { isAlive, rssKb } from '../support/faults.js';
import { eventually } from '../support/wait.js';
import { openFlood, openProbe, type Probe } from '../support/flood.js';
import { launchRelay, type RunningRelay } from '../support/relay.js';
import { startUpstream, type Upstream } from '../support/upstream.js';

const IDLE = Number(process.env.FLOOD_IDLE ?? 500);
const LORIS = Number(process.env.FLOOD_LORIS ?? 50);
const IDLE_TIMEOUT_MS = 3000;

/** Trickles a command one byte at a time: never idle long enough to time out */
function trickle(probe: Probe, text: string, everyMs: number): NodeJS.Timeout {
  let i = 0;
  const timer = setInterval(() => {
    if (probe.socket.destroyed) return clearInterval(timer);
    probe.socket.write(text[i % text.length] ?? '');
    i++;
  }, everyMs);
  return timer;
}

describe(`connection flood: ${IDLE} silent connections + ${LORIS} slow-loris senders`, () => {
  let upstream: Upstream;
  let relay: RunningRelay;
  const idle: Probe[] = [];
  const loris: Probe[] = [];
  const timers: NodeJS.Timeout[] = [];
  let floodStarted = 0;

  before(async () => {
    upstream = await startUpstream({ offerTls: false });
    relay = await launchRelay({
      config: {
        smtp: {
          idleTimeout: `${IDLE_TIMEOUT_MS / 1000}s`,
          maxConnections: IDLE + LORIS + 100,
          maxConnectionsPerClient: IDLE + LORIS + 100,
        },
        delivery: { smarthost: { host: '127.0.0.1', port: upstream.port, security: 'none' } },
      },
    });
    floodStarted = Date.now();
    idle.push(...(await openFlood(relay.smtpPort, ['127.0.0.3'], IDLE)));
    for (let i = 0; i < LORIS; i++) {
      const probe = await openProbe(relay.smtpPort, '127.0.0.4');
      loris.push(probe);
      timers.push(trickle(probe, 'EHLO slow-loris.example\r\nMAIL FROM:<x@example.com>\r\n', 400));
    }
  });
  after(async () => {
    timers.forEach(clearInterval);
    for (const probe of [...idle, ...loris]) probe.socket.destroy();
    await relay?.stop();
    await upstream?.close();
  });

  test('a real device is served promptly while the flood is on', async () => {
    // Time the device once the relay has taken every flood connection in (each was greeted)
    await eventually(
      'every silent connection greeted',
      () => (idle.every((p) => p.received.startsWith('220 ')) ? true : undefined),
      { timeoutMs: 10_000, everyMs: 20 },
    );
    assert.ok(
      idle.filter((p) => p.closedAt === undefined).length > IDLE / 2,
      'the flood is still connected',
    );
    const reply = await smtplibSend(
      relay.smtpPort,
      'printer@office.test',
      ['boss@example.com'],
      'Subject: during the flood\r\n\r\nhello\r\n',
    );
    assert.match(reply, /^250 /);
    // The same transaction timed on a socket, without Python's start-up
    const began = Date.now();
    const smtp = await RawSmtp.connect(relay.smtpPort);
    await smtp.reply();
    for (const line of [
      'EHLO printer.lan',
      'MAIL FROM:<printer@office.test>',
      'RCPT TO:<boss@example.com>',
      'DATA',
    ])
      await smtp.command(`${line}\r\n`);
    assert.match(await smtp.command('Subject: timed\r\n\r\nhello\r\n.\r\n'), /^250 /);
    smtp.close();
    const took = Date.now() - began;
    console.log(
      `load-flood: a device transaction took ${took} ms with ${IDLE + LORIS} hostile connections open; relay RSS ${rssKb(relay.process.pid!)} kB`,
    );
    assert.ok(took < 1000, `served in ${took} ms`);
    await upstream.waitFor(2);
  });

  test('silent connections were greeted, then closed with 421 by the idle timeout', async () => {
    await eventually(
      'every silent connection closed',
      () => (idle.every((p) => p.closedAt !== undefined) ? true : undefined),
      { timeoutMs: IDLE_TIMEOUT_MS + 15_000 },
    );
    const latest = Math.max(...idle.map((p) => p.closedAt ?? 0)) - floodStarted;
    console.log(
      `load-flood: ${IDLE} silent connections closed, the last ${latest} ms after the flood began (idle timeout ${IDLE_TIMEOUT_MS} ms)`,
    );
    const unanswered = idle.filter(
      (p) => !/^220 [^\r\n]*\r\n(.*\r\n)*421 [^\r\n]*\r\n$/s.test(p.received),
    );
    assert.deepEqual(
      unanswered.slice(0, 3).map((p) => p.received),
      [],
      'each got a 220 greeting and a 421 goodbye',
    );
  });

  test('the relay is still alive and serving after the flood', async () => {
    timers.forEach(clearInterval);
    for (const probe of loris) probe.socket.destroy();
    assert.ok(isAlive(relay.process.pid!));
    const reply = await smtplibSend(
      relay.smtpPort,
      'printer@office.test',
      ['boss@example.com'],
      'Subject: after the flood\r\n\r\nhello\r\n',
    );
    assert.match(reply, /^250 /);
    await upstream.waitFor(3);
  });
});
