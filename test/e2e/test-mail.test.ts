/**
 * The page's test mail goes the way devices' mail goes (the Deliverer): with
 * sender alignment and DKIM set, what reaches a real smtp-server upstream
 * has the rewritten envelope sender and From, and a DKIM-Signature. Before,
 * the test mail skipped both, so it could pass while devices' mail failed.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { setupAdminOf, type WebClient } from '../support/browser.js';
import { launchRelay, type RunningRelay } from '../support/relay.js';
import { startUpstream, viaSmarthost, type Upstream } from '../support/upstream.js';

describe('the test mail from the admin page', () => {
  let upstream: Upstream;
  let relay: RunningRelay;
  let admin: WebClient;

  before(async () => {
    upstream = await startUpstream({ requireTls: true });
    relay = await launchRelay({
      config: viaSmarthost(upstream, {
        rewrite: {
          envelopeFrom: 'relay@contoso.test',
          headerFrom: 'relay@contoso.test',
          useDeviceName: false,
        },
        dkim: { enabled: true, domain: 'contoso.test', selector: 'relay1' },
      }),
    });
    admin = await setupAdminOf(relay);
  });
  after(async () => {
    await relay.stop();
    await upstream.close();
  });

  test('is sender-aligned and DKIM-signed like devices mail, and the page shows the upstream reply', async () => {
    await admin.get('/test-mail');
    const sent = await admin.post('/test-mail', { to: 'check@example.com' });
    assert.match(sent.text, /Accepted by the upstream/);
    const [message] = await upstream.waitFor(1);
    assert.equal(message?.from, 'relay@contoso.test', 'the envelope sender is rewritten');
    const raw = message?.raw.toString('latin1') ?? '';
    assert.match(raw, /^DKIM-Signature: [^\r\n]*d=contoso\.test;/, 'signed for the aligned domain');
    assert.match(raw, /^From: [^\r\n]*<relay@contoso\.test>\r\n/m, 'the From header is rewritten');
    assert.match(raw, /^Subject: edge-relay test message\r\n/m);
  });
});
