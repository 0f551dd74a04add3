/**
 * Lock-out attempts against the SHIPPED DEFAULTS (smtp.maxConnections 100,
 * maxConnectionsPerClient 20, idleTimeout 5m): ten hosts (127.0.0.2-.11) open
 * 200 connections that say nothing, or that only ever say NOOP, and a device
 * on an eleventh host (127.0.0.12) must still get its 220 and its 250 after
 * DATA within a few seconds. smtp-source's 20 parallel sessions, each
 * reconnecting after QUIT, stay within the per-client limit of 20.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { RawSmtp, run } from '../support/clients.js';
import { queueList } from '../support/faults.js';
import { eventually } from '../support/wait.js';
import { lastReply, openFlood, type Probe } from '../support/flood.js';
import { launchRelay, type RunningRelay } from '../support/relay.js';
import { startUpstream, type Upstream } from '../support/upstream.js';
import { DEFAULT_CONFIG } from '../../src/config/defaults.js';

const FLOOD_HOSTS = Array.from({ length: 10 }, (_, i) => `127.0.0.${i + 2}`);
const PER_HOST = 20;
const DEVICE = '127.0.0.12';
const SERVED_WITHIN_MS = 3000;
const { maxConnections } = DEFAULT_CONFIG.smtp;

interface Served {
  greeting: string;
  data: string;
  ms: number;
}

/** One message from the device, timed from connect to the reply after DATA */
async function deviceSends(port: number, subject: string): Promise<Served> {
  const began = Date.now();
  const smtp = await RawSmtp.connect(port, { localAddress: DEVICE });
  try {
    const greeting = await smtp.reply();
    if (!greeting.startsWith('220')) return { greeting, data: '', ms: Date.now() - began };
    for (const line of [
      'EHLO printer.lan',
      'MAIL FROM:<printer@office.test>',
      'RCPT TO:<boss@example.com>',
      'DATA',
    ])
      await smtp.command(`${line}\r\n`);
    const data = await smtp.command(`Subject: ${subject}\r\n\r\nhello\r\n.\r\n`);
    return { greeting, data, ms: Date.now() - began };
  } finally {
    smtp.close();
  }
}

/** Every flood connection has heard from the relay: greeted, or greeted and closed to make room */
const everyoneAnswered = (flood: Probe[]) =>
  flood.every((p) => p.received.length > 0) ? true : undefined;

describe(`lock-out at the shipped defaults (${maxConnections} connections, ${DEFAULT_CONFIG.smtp.maxConnectionsPerClient} per client, idle ${DEFAULT_CONFIG.smtp.idleTimeout})`, () => {
  let upstream: Upstream;
  let relay: RunningRelay;
  let delivered = 0;
  const floods: Probe[][] = [];
  const timers: NodeJS.Timeout[] = [];

  before(async () => {
    upstream = await startUpstream({ offerTls: false });
    relay = await launchRelay({
      config: {
        delivery: { smarthost: { host: '127.0.0.1', port: upstream.port, security: 'none' } },
      },
    });
  });
  after(async () => {
    timers.forEach(clearInterval);
    floods.flat().forEach((p) => p.socket.destroy());
    await relay?.stop();
    await upstream?.close();
  });

  test(`${FLOOD_HOSTS.length * PER_HOST} silent connections from ${FLOOD_HOSTS.length} hosts: a device on an 11th host is served within ${SERVED_WITHIN_MS} ms`, async () => {
    const flood = await openFlood(relay.smtpPort, FLOOD_HOSTS, PER_HOST);
    floods.push(flood);
    await eventually('every flood connection answered', () => everyoneAnswered(flood), {
      timeoutMs: 10_000,
      everyMs: 20,
    });
    const served = await deviceSends(relay.smtpPort, 'during a silent flood');
    assert.match(served.greeting, /^220 /);
    assert.match(served.data, /^250 .*queued as/);
    const open = flood.filter((p) => p.closedAt === undefined).length;
    console.log(
      `load-lockout: device on ${DEVICE} served in ${served.ms} ms with ${open} silent flood connections still open (${flood.length - open} closed with "${lastReply(flood.find((p) => p.closedAt) ?? flood[0]!)}")`,
    );
    assert.ok(served.ms < SERVED_WITHIN_MS, `served in ${served.ms} ms`);
    await upstream.waitFor(++delivered);
  });

  test(`${FLOOD_HOSTS.length * PER_HOST} NOOP-ing connections: the device is served, and the relay reclaims slots though NOOP never stops`, async () => {
    floods.flat().forEach((p) => p.socket.destroy());
    const flood = await openFlood(relay.smtpPort, FLOOD_HOSTS, PER_HOST);
    floods.push(flood);
    const began = Math.min(...flood.map((p) => p.openedAt));
    flood.forEach((p) => p.socket.write('EHLO flood.example\r\n'));
    timers.push(
      setInterval(
        () => flood.forEach((p) => p.closedAt === undefined && p.socket.write('NOOP\r\n')),
        500,
      ),
    );
    await eventually('every flood connection answered', () => everyoneAnswered(flood), {
      timeoutMs: 10_000,
      everyMs: 20,
    });
    const served = await deviceSends(relay.smtpPort, 'during a NOOP flood');
    assert.match(served.greeting, /^220 /);
    assert.match(served.data, /^250 .*queued as/);
    assert.ok(served.ms < SERVED_WITHIN_MS, `served in ${served.ms} ms`);
    await upstream.waitFor(++delivered);
    // Near the limit a session that sends no mail gets the stress timeout, NOOP or not
    const belowStress = Math.floor(maxConnections * 0.8);
    await eventually(
      `at most ${belowStress} NOOP-ers left`,
      () =>
        flood.filter((p) => p.closedAt === undefined).length <= belowStress ? true : undefined,
      { timeoutMs: 20_000 },
    );
    const reclaimed = flood.filter(
      (p) => p.closedAt !== undefined && /^421 4\.4\.2 .*no mail/i.test(lastReply(p)),
    );
    console.log(
      `load-lockout: NOOP flood: device served in ${served.ms} ms; ${reclaimed.length} NOOP-ing sessions closed for making no progress, the last ${Math.max(...reclaimed.map((p) => p.closedAt!)) - began} ms after the flood began`,
    );
    assert.ok(reclaimed.length > 0, 'closed with a 421 that says why');
  });

  test(`smtp-source with ${PER_HOST} parallel sessions, reconnecting after each QUIT, gets no 421: every message accepted`, async () => {
    timers.forEach(clearInterval);
    floods.flat().forEach((p) => p.socket.destroy());
    const messages = 300;
    const result = await run(
      'smtp-source',
      [
        '-s',
        String(PER_HOST),
        '-m',
        String(messages),
        '-l',
        '1000',
        '-f',
        'scanner@office.test',
        '-t',
        'ops@example.com',
        `127.0.0.1:${relay.smtpPort}`,
      ],
      { timeoutMs: 60_000 },
    );
    assert.equal(result.stderr, '');
    assert.equal(result.code, 0);
    delivered += messages;
    await upstream.waitFor(delivered, 30_000);
  });
});

describe('a session that only ever says NOOP is closed after smtp.idleTimeout, even with room to spare', () => {
  let relay: RunningRelay;
  before(async () => {
    relay = await launchRelay({ config: { smtp: { idleTimeout: '2s' } } });
  });
  after(async () => {
    await relay?.stop();
  });

  test('NOOP, RSET and EHLO every 300 ms do not keep the session open', async () => {
    const [probe] = await openFlood(relay.smtpPort, ['127.0.0.2'], 1);
    const chatter = ['NOOP\r\n', 'RSET\r\n', 'EHLO chatty.example\r\n'];
    let said = 0;
    const timer = setInterval(() => probe!.socket.write(chatter[said++ % chatter.length]!), 300);
    try {
      await eventually(
        'closed by the relay',
        () => (probe!.closedAt !== undefined ? true : undefined),
        { timeoutMs: 10_000, everyMs: 50 },
      );
    } finally {
      clearInterval(timer);
    }
    const lasted = probe!.closedAt! - probe!.openedAt;
    console.log(
      `load-lockout: a NOOP/RSET/EHLO-only session was closed after ${lasted} ms (idleTimeout 2s); ${said} commands sent`,
    );
    assert.match(lastReply(probe!), /^421 4\.4\.2 .*no mail/i);
    assert.ok(lasted >= 2000 && lasted < 4000, `closed after ${lasted} ms`);
  });

  test('a device that sends mail in the same time is not cut off', async () => {
    const smtp = await RawSmtp.connect(relay.smtpPort);
    try {
      await smtp.reply();
      await smtp.command('EHLO printer.lan\r\n');
      // MAIL every 0.9 s with idleTimeout 2s (room for a test slowed by load): 3.6 s in all, well past the
      // deadline counted from the connect. These pauses are the device's pace, the thing under test: the
      // relay does nothing while a session keeps moving, so there is no signal to wait for instead
      for (let i = 0; i < 4; i++) {
        await new Promise((resolve) => setTimeout(resolve, 450));
        assert.match(await smtp.command('MAIL FROM:<printer@office.test>\r\n'), /^250/);
        await new Promise((resolve) => setTimeout(resolve, 450));
        assert.match(await smtp.command('RSET\r\n'), /^250/);
      }
      assert.match(await smtp.command('NOOP\r\n'), /^250/, 'still open at the end');
      assert.equal(smtp.closed, false);
    } finally {
      smtp.close();
    }
  });

  test('a body trickled a byte at a time is not progress: 421 mid-DATA, nothing queued', async () => {
    const smtp = await RawSmtp.connect(relay.smtpPort, { localAddress: '127.0.0.3' });
    const began = Date.now();
    await smtp.reply();
    for (const line of [
      'EHLO loris.example',
      'MAIL FROM:<loris@office.test>',
      'RCPT TO:<ops@example.com>',
      'DATA',
    ])
      await smtp.command(`${line}\r\n`);
    const body = 'Subject: trickle\r\n\r\n' + 'x'.repeat(100);
    let sent = 0;
    const timer = setInterval(() => smtp.socket.write(body[sent++ % body.length]!), 200);
    try {
      assert.match(await smtp.reply(10_000), /^421 4\.4\.2 .*no mail/i);
    } finally {
      clearInterval(timer);
      smtp.close();
    }
    console.log(
      `load-lockout: a DATA trickle (5 bytes/s) was closed ${Date.now() - began} ms after connect (idleTimeout 2s)`,
    );
    assert.deepEqual(await queueList(relay), []);
  });

  test('a body that keeps arriving at a real rate is taken however long it lasts', async () => {
    const smtp = await RawSmtp.connect(relay.smtpPort);
    try {
      await smtp.reply();
      for (const line of [
        'EHLO scanner.lan',
        'MAIL FROM:<scanner@office.test>',
        'RCPT TO:<ops@example.com>',
        'DATA',
      ])
        await smtp.command(`${line}\r\n`);
      smtp.socket.write('Subject: slow scan\r\n\r\n');
      // 8 KB every 250 ms (32 KB/s) for 3 s, past the 2 s deadline: the pace of the sender under test, no wait for a signal
      for (let i = 0; i < 12; i++) {
        smtp.socket.write(`${'y'.repeat(78)}\r\n`.repeat(100));
        await new Promise((resolve) => setTimeout(resolve, 250));
      }
      assert.match(await smtp.command('.\r\n'), /^250 .*queued as/);
    } finally {
      smtp.close();
    }
  });
});

describe('a full listener makes room only for a client it admits', () => {
  let relay: RunningRelay;
  before(async () => {
    relay = await launchRelay({
      config: {
        smtp: {
          maxConnections: 5,
          maxConnectionsPerClient: 3,
          allowNetworks: ['127.0.0.1/32', '127.0.0.2/32'],
        },
      },
    });
  });
  after(async () => {
    await relay?.stop();
  });

  test("an outsider or a client at its limit is refused and closes nobody; an admitted newcomer replaces the biggest holder's idle session", async () => {
    const holders = [
      ...(await openFlood(relay.smtpPort, ['127.0.0.1'], 3)),
      ...(await openFlood(relay.smtpPort, ['127.0.0.2'], 2)),
    ];
    const knockers = [
      ...(await openFlood(relay.smtpPort, ['127.0.0.3'], 5)),
      ...(await openFlood(relay.smtpPort, ['127.0.0.1'], 5)),
    ];
    try {
      await eventually(
        'every knocker refused',
        () => (knockers.every((p) => p.closedAt !== undefined) ? true : undefined),
        { timeoutMs: 10_000, everyMs: 20 },
      );
      assert.deepEqual(
        new Set(knockers.map(lastReply)),
        new Set(['421 relay.test Too many connected clients, try again in a moment']),
      );
      assert.deepEqual(
        holders.map((p) => p.received.slice(0, 4)),
        Array(5).fill('220 '),
        'no holder was closed for them',
      );
      const [newcomer] = await openFlood(relay.smtpPort, ['127.0.0.2'], 1);
      holders.push(newcomer!);
      await eventually(
        'the newcomer greeted',
        () => (newcomer!.received.startsWith('220 ') ? true : undefined),
        { timeoutMs: 10_000, everyMs: 20 },
      );
      await eventually('one holder closed', () => holders.find((p) => p.closedAt !== undefined), {
        timeoutMs: 10_000,
        everyMs: 20,
      });
      const closed = holders.filter((p) => p.closedAt !== undefined);
      assert.equal(closed.length, 1);
      assert.equal(
        closed[0],
        holders[0],
        '127.0.0.1 held the most; its longest-idle session gave way',
      );
      assert.match(lastReply(closed[0]!), /^421 4\.4\.2 .*the relay is full/);
    } finally {
      [...holders, ...knockers].forEach((p) => p.socket.destroy());
    }
  });
});
