/**
 * Per-client limits: smtp.maxConnectionsPerClient (421 for one connection too
 * many) and smtp.maxMessagesPerMinute (450/451 at MAIL for one message too
 * many). Each client is a different loopback address; the limit of one
 * client never touches another.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { RawSmtp } from '../support/clients.js';
import { launchRelay, type RunningRelay } from '../support/relay.js';
import { startUpstream, type Upstream } from '../support/upstream.js';
import { eventually } from '../support/wait.js';

const MAX_CONNECTIONS = 3;
const MAX_PER_MINUTE = 5;

async function sendMessage(port: number, localAddress: string): Promise<string> {
  const smtp = await RawSmtp.connect(port, { localAddress });
  try {
    await smtp.reply();
    await smtp.command('EHLO device\r\n');
    const mail = await smtp.command('MAIL FROM:<device@office.test>\r\n');
    if (!mail.startsWith('250')) return mail;
    await smtp.command('RCPT TO:<ops@example.com>\r\n');
    await smtp.command('DATA\r\n');
    return await smtp.command('Subject: rate\r\n\r\nhello\r\n.\r\n');
  } finally {
    smtp.close();
  }
}

describe('per-client connection and message-rate limits', () => {
  let upstream: Upstream;
  let relay: RunningRelay;

  before(async () => {
    upstream = await startUpstream({ offerTls: false });
    relay = await launchRelay({
      config: {
        smtp: { maxConnectionsPerClient: MAX_CONNECTIONS, maxMessagesPerMinute: MAX_PER_MINUTE },
        delivery: { smarthost: { host: '127.0.0.1', port: upstream.port, security: 'none' } },
      },
    });
  });
  after(async () => {
    await relay?.stop();
    await upstream?.close();
  });

  test(`connection ${MAX_CONNECTIONS + 1} from one client gets 421; another client is still greeted`, async () => {
    const open: RawSmtp[] = [];
    try {
      for (let i = 0; i < MAX_CONNECTIONS; i++) {
        const smtp = await RawSmtp.connect(relay.smtpPort, { localAddress: '127.0.0.5' });
        open.push(smtp);
        assert.match(await smtp.reply(), /^220 /);
      }
      const extra = await RawSmtp.connect(relay.smtpPort, { localAddress: '127.0.0.5' });
      open.push(extra);
      const reply = await extra.reply();
      assert.match(reply, /^421 /);
      assert.match(reply, /127\.0\.0\.5/, 'the reply says who is over the limit');
      const other = await RawSmtp.connect(relay.smtpPort, { localAddress: '127.0.0.6' });
      open.push(other);
      assert.match(await other.reply(), /^220 /);
    } finally {
      open.forEach((s) => s.close());
    }
  });

  test('a closed connection frees its slot', async () => {
    const connect = async () => {
      const smtp = await RawSmtp.connect(relay.smtpPort, { localAddress: '127.0.0.9' });
      open.push(smtp);
      return smtp.reply();
    };
    const open: RawSmtp[] = [];
    try {
      for (let i = 0; i < MAX_CONNECTIONS; i++) assert.match(await connect(), /^220 /);
      assert.match(await connect(), /^421 /, 'the client is at its limit');
      open.shift()!.close();
      // The relay sees the close in its own time: the slot is free once a newcomer is greeted
      await eventually('a greeting in the freed slot', async () => /^220 /.test(await connect()), {
        timeoutMs: 5_000,
      });
    } finally {
      open.forEach((s) => s.close());
    }
  });

  test(`message ${MAX_PER_MINUTE + 1} in a minute from one client gets 450/451 at MAIL; another client still sends`, async () => {
    for (let i = 0; i < MAX_PER_MINUTE; i++)
      assert.match(await sendMessage(relay.smtpPort, '127.0.0.7'), /^250 .*queued as/);
    const over = await sendMessage(relay.smtpPort, '127.0.0.7');
    assert.match(over, /^45[01] /);
    assert.match(await sendMessage(relay.smtpPort, '127.0.0.8'), /^250 .*queued as/);
    await upstream.waitFor(MAX_PER_MINUTE + 1);
  });
});
