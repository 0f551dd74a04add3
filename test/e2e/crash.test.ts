/**
 * Power-cut test: several devices send while the upstream is down, the relay
 * is killed with SIGKILL mid-stream, restarted with the upstream up, and every
 * message that got a 250 must arrive.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { RawSmtp } from '../support/clients.js';
import { queueList } from '../support/faults.js';
import { launchRelay } from '../support/relay.js';
import { startUpstream } from '../support/upstream.js';
import { eventually } from '../support/wait.js';

const CLIENTS = 5;
const PER_CLIENT = 80;
const KILL_AFTER = 150;

async function device(
  port: number,
  client: number,
  acked: Set<string>,
  shouldStop: () => boolean,
): Promise<void> {
  for (let n = 0; n < PER_CLIENT && !shouldStop(); n++) {
    const token = `msg-${client}-${n}`;
    let smtp: RawSmtp | undefined;
    try {
      smtp = await RawSmtp.connect(port);
      await smtp.reply();
      await smtp.command('HELO device\r\n');
      await smtp.command(`MAIL FROM:<device${client}@office.test>\r\n`);
      await smtp.command('RCPT TO:<ops@example.com>\r\n');
      await smtp.command('DATA\r\n');
      const reply = await smtp.command(
        `Subject: ${token}\r\nX-Token: ${token}\r\n\r\n${'scan data '.repeat(50)}\r\n.\r\n`,
      );
      if (reply.startsWith('250')) acked.add(token);
    } catch {
      return; // the relay died under us: this message was never acknowledged
    } finally {
      smtp?.close();
    }
  }
}

test(
  'kill -9 during intake loses nothing that was acknowledged',
  { timeout: 120_000 },
  async () => {
    // Reserve a port for the upstream, then leave it closed: the upstream is "down"
    const probe = await startUpstream();
    const upstreamPort = probe.port;
    await probe.close();
    const config = {
      delivery: {
        smarthost: { host: '127.0.0.1', port: upstreamPort, security: 'none' },
        retry: { delays: ['1s'], maxAge: '5d' },
      },
    };

    const first = await launchRelay({ config });
    const acked = new Set<string>();
    let killed = false;
    const devices = Array.from({ length: CLIENTS }, (_, client) =>
      device(first.smtpPort, client, acked, () => killed),
    );
    await eventually(`${KILL_AFTER} acknowledged messages`, () => acked.size >= KILL_AFTER, {
      timeoutMs: 60_000,
      everyMs: 5,
    });
    await first.kill();
    killed = true;
    await Promise.all(devices);
    const ackedAtKill = acked.size;
    assert.ok(ackedAtKill >= KILL_AFTER);

    const upstream = await startUpstream({ port: upstreamPort });
    const second = await launchRelay({ config, dir: first.dir });
    try {
      // Messages that were durable but whose 250 never reached the device may arrive too: wait for the acknowledged ones
      const tokensOf = () =>
        upstream.messages.map((m) => /X-Token: (\S+)/.exec(m.raw.toString())?.[1] ?? '');
      await eventually(
        'every acknowledged message',
        () => [...acked].every((t) => tokensOf().includes(t)),
        { timeoutMs: 60_000 },
      ).catch((err: Error) => {
        throw new Error(`${err.message}\n${second.output().slice(-3000)}`);
      });
      // Late copies could only come from the queue: once it is empty, the count is final
      await eventually('an empty queue', async () => (await queueList(second)).length === 0);
      const received = upstream.messages;
      const tokens = tokensOf();
      const missing = [...acked].filter((t) => !tokens.includes(t));
      const duplicates = tokens.length - new Set(tokens).size;
      console.log(
        `# crash test: ${ackedAtKill} acknowledged before kill -9, ${received.length} delivered after restart, ${missing.length} lost, ${duplicates} duplicates`,
      );
      assert.deepEqual(missing, [], 'every acknowledged message is delivered');
      assert.equal(
        duplicates,
        0,
        'the upstream was down before the crash, so nothing can be sent twice',
      );
      const queue = await second.cli(['queue', 'list', '--json']);
      assert.deepEqual(JSON.parse(queue.stdout), [], 'nothing left behind in the queue');
    } finally {
      await second.stop();
      await upstream.close();
    }
  },
);
