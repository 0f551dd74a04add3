/**
 * One recipient delivered, one rejected, and the bounce report can't be
 * written (spool/tmp read-only). The outcome must already be on disk: the
 * delivered recipient never gets a second copy while the report is retried,
 * and the report arrives once the spool is writable again.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { smtplibSend } from '../support/clients.js';
import { eventually, queueList, unmount } from '../support/faults.js';
import { newMail, startRelay, type RunningRelay } from '../support/relay.js';
import { startUpstream, viaSmarthost, type Upstream } from '../support/upstream.js';

function makeReadOnly(dir: string): void {
  execFileSync('mount', ['--bind', dir, dir]);
  execFileSync('mount', ['-o', 'remount,bind,ro', dir]);
}

const postmasterReports = (relay: RunningRelay): string[] => newMail(relay, 'postmaster').filter((text) => text.includes('multipart/report'));

describe('a bounce report that cannot be written', () => {
  let upstream: Upstream;
  let relay: RunningRelay;
  let upstreamDown = true;
  let tmpDir: string | undefined;

  before(async () => {
    upstream = await startUpstream({
      rcptReply: (address) => (upstreamDown ? [451, '4.3.0 Down for this test'] : address.startsWith('nobody@') ? [550, '5.1.1 No such user here'] : undefined),
    });
    relay = await startRelay({ config: viaSmarthost(upstream) });
  });
  after(async () => {
    if (tmpDir) unmount(tmpDir);
    await relay?.stop();
    await upstream?.close();
  });

  test('the delivered recipient gets one copy while the report waits for a writable spool', async () => {
    await smtplibSend(relay.smtpPort, 'scanner@office.test', ['nobody@example.com', 'boss@example.com'], 'Subject: partial\r\n\r\nbody\r\n');
    await eventually('a first, deferred attempt', async () => ((await queueList(relay))[0]?.attempts ?? 0) >= 1 || undefined);
    tmpDir = path.join(relay.dataDir, 'spool/tmp');
    makeReadOnly(tmpDir);
    upstreamDown = false;
    await upstream.waitFor(1, 10_000);
    // Retries of the report come every second (the test retry schedule): give it several
    await relay.waitForLog((line) => line.msg === 'Delivery attempt failed; will retry', 10_000);
    await new Promise((resolve) => setTimeout(resolve, 3_000));
    assert.equal(upstream.messages.length, 1, 'boss@ got exactly one copy');
    const [item] = await queueList(relay);
    assert.deepEqual(item?.recipients.map((r) => `${r.address} ${r.status}`), ['nobody@example.com bounced', 'boss@example.com delivered']);
    assert.deepEqual(postmasterReports(relay), []);

    unmount(tmpDir);
    tmpDir = undefined;
    const [report] = await eventually('the bounce report in the postmaster mailbox', () => postmasterReports(relay)[0] ? postmasterReports(relay) : undefined, 10_000);
    assert.match(report ?? '', /Final-Recipient: rfc822; nobody@example\.com/);
    assert.doesNotMatch(report ?? '', /Final-Recipient: rfc822; boss@example\.com/);
    await eventually('an empty queue', async () => ((await queueList(relay)).length === 0 ? true : undefined));
    assert.equal(upstream.messages.length, 1, 'still exactly one copy');
    assert.equal(postmasterReports(relay).length, 1, 'one report');
  });
});
