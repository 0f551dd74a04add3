/**
 * Delivery through Microsoft Graph end to end: a device sends plain SMTP to
 * the relay (a child process), which signs in with client credentials at a
 * local token endpoint and hands the message to a local fake of Graph over
 * HTTPS with the test CA: sendMail with the MIME as is, a 20 MB scan as a
 * draft plus an upload session, throttling, revoked consent, an expired
 * client secret.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { resolveConfig } from '../../src/config/validate.js';
import { graphCheck } from '../../src/deliver/graph/graph-check.js';
import { silentLogger } from '../../src/log.js';
import { OAuthClient } from '../../src/oauth/client.js';
import { setupAdminOf, type WebClient } from '../support/browser.js';
import { makeCerts } from '../support/certs.js';
import { smtplibSend } from '../support/clients.js';
import {
  GRAPH_REQUEST_LIMIT,
  GRAPH_SCOPE,
  startFakeGraph,
  type FakeGraph,
} from '../support/fake-graph.js';
import { launchRelay, type RunningRelay } from '../support/relay.js';
import { eventually } from '../support/wait.js';

const MAILBOX = 'scanner@contoso.test';

function graphConfig(graph: FakeGraph) {
  return {
    delivery: {
      mode: 'graph',
      graph: {
        tenant: graph.tenant,
        clientId: graph.clientId,
        clientSecret: graph.clientSecret,
        sender: 'from',
        tokenUrl: graph.tokenUrl,
        baseUrl: graph.baseUrl,
      },
      tls: { verify: true, caFile: makeCerts().caFile },
    },
  };
}

const wrap = (base64: string): string => base64.replace(/.{76}/g, '$&\r\n').replace(/\r\n$/, '');

/** A scan as a copier sends it: a short text part and a PDF in base64 */
function scan(subject: string, pdf: Buffer, to = 'boss@example.com'): Buffer {
  return Buffer.from(
    [
      `From: "3rd floor MFP" <${MAILBOX}>`,
      `To: ${to}`,
      `Subject: ${subject}`,
      'Date: Sun, 06 Dec 2026 08:00:00 +0100',
      `Message-ID: <${randomBytes(8).toString('hex')}@mfp.contoso.test>`,
      'MIME-Version: 1.0',
      'Content-Type: multipart/mixed; boundary="scan-boundary"',
      '',
      '--scan-boundary',
      'Content-Type: text/plain; charset=iso-8859-1',
      'Content-Transfer-Encoding: quoted-printable',
      '',
      'Scanned on the 3rd floor, Gr=FC=DFe.',
      '',
      '--scan-boundary',
      'Content-Type: application/pdf; name="scan 0001.pdf"',
      'Content-Disposition: attachment; filename="scan 0001.pdf"',
      'Content-Transfer-Encoding: base64',
      '',
      wrap(pdf.toString('base64')),
      '--scan-boundary--',
      '',
    ].join('\r\n'),
    'latin1',
  );
}

const deliveredCount = (relay: RunningRelay, count: number) =>
  relay.waitForLog(
    (l) =>
      l.msg === 'Message done, removed from the queue' &&
      relay.logs.filter((x) => x.msg === l.msg).length >= count,
    60_000,
  );

const recipientLog = (relay: RunningRelay, status: string, includes: string) =>
  relay.waitForLog(
    (l) => l.msg === `Recipient ${status}` && String(l.error ?? l.detail ?? '').includes(includes),
    20_000,
  );

function assertNoSecrets(relay: RunningRelay, graph: FakeGraph): void {
  const output = relay.output();
  for (const secret of graph.secrets())
    assert.ok(
      !output.includes(secret),
      `a token or secret (${secret.slice(0, 10)}...) appeared in the log`,
    );
}

describe('Microsoft Graph delivery', () => {
  let graph: FakeGraph;
  let relay: RunningRelay;
  let web: WebClient;

  before(async () => {
    graph = await startFakeGraph();
    relay = await launchRelay({ config: graphConfig(graph) });
    web = await setupAdminOf(relay);
  });
  after(async () => {
    await relay.stop();
    await graph.close();
  });

  test('a 2 KB message reaches sendMail as the same MIME, signed in with the Graph scope', async () => {
    const message = scan('small scan', randomBytes(1200));
    assert.ok(message.length > 1800 && message.length < 2600);
    await smtplibSend(relay.smtpPort, MAILBOX, ['boss@example.com'], message);
    await deliveredCount(relay, 1);
    const [sent] = graph.sent;
    assert.equal(sent?.via, 'sendMail');
    assert.equal(sent?.mailbox, MAILBOX, 'sent from the mailbox of the From address');
    // The relay only adds its trace fields on top; every byte of the device's message is there as sent
    const mime = sent?.mime ?? Buffer.alloc(0);
    assert.ok(
      mime.subarray(mime.length - message.length).equals(message),
      "the device's MIME arrives byte for byte",
    );
    assert.match(
      mime.subarray(0, mime.length - message.length).toString('latin1'),
      /^(Received:[^\r]*\r\n([ \t][^\r]*\r\n)*)+$/,
    );
    assert.deepEqual(graph.tokenScopes, [GRAPH_SCOPE]);
    const call = graph.requests.find((r) => r.path.endsWith('/sendMail'));
    assert.equal(call?.path, `/v1.0/users/${encodeURIComponent(MAILBOX)}/sendMail`);
    assertNoSecrets(relay, graph);
  });

  test('a 20 MB scan goes as a draft plus an upload session, and the chunks make the same file', async () => {
    const pdf = randomBytes(20 * 1024 * 1024);
    const message = scan('big scan', pdf);
    const started = Date.now();
    await smtplibSend(relay.smtpPort, MAILBOX, ['boss@example.com'], message);
    await deliveredCount(relay, 2);
    const sent = graph.sent.at(-1);
    assert.equal(sent?.via, 'draft');
    assert.equal(sent?.attachments.length, 1);
    const [attachment] = sent?.attachments ?? [];
    assert.equal(attachment?.name, 'scan 0001.pdf');
    assert.equal(attachment?.contentType, 'application/pdf');
    assert.ok(attachment?.bytes.equals(pdf), 'the uploaded chunks reassemble to the scanned file');
    assert.ok((attachment?.chunkSizes.length ?? 0) >= 6);
    for (const size of attachment?.chunkSizes.slice(0, -1) ?? [])
      assert.ok(size % (320 * 1024) === 0 && size <= 4 * 1024 * 1024, `chunk of ${size} bytes`);
    // The draft is the device's message without the PDF: its headers and text part as sent
    const draft = sent?.mime.toString('latin1') ?? '';
    assert.ok(draft.length < 3 * 1024 * 1024);
    assert.match(draft, /Subject: big scan\r\n/);
    assert.match(draft, /Scanned on the 3rd floor, Gr=FC=DFe\./);
    assert.doesNotMatch(draft, /scan 0001\.pdf/);
    assert.ok(
      graph.requests.every((r) => r.bytes <= GRAPH_REQUEST_LIMIT),
      "no request over Graph's 4 MB",
    );
    assert.equal(
      graph.requests.filter((r) => r.path.endsWith('/sendMail') && r.status === 413).length,
      0,
    );
    assert.ok(Date.now() - started < 30_000, `took ${Date.now() - started} ms`);
  });

  test('429 with Retry-After defers, and the next request waits at least as long as Graph asked', async () => {
    graph.setMode({ kind: 'throttle', times: 1, retryAfterS: 3 });
    const before = graph.requests.length;
    await smtplibSend(
      relay.smtpPort,
      MAILBOX,
      ['boss@example.com'],
      scan('throttled', randomBytes(500)),
    );
    await recipientLog(relay, 'deferred', 'throttled');
    await deliveredCount(relay, 3);
    const calls = graph.requests.slice(before).filter((r) => r.path.endsWith('/sendMail'));
    assert.deepEqual(
      calls.map((c) => c.status),
      [429, 202],
    );
    const waited = (calls[1]?.at ?? 0) - (calls[0]?.at ?? 0);
    assert.ok(waited >= 3000, `retried after ${waited} ms, Graph asked for 3000`);
    graph.setMode({ kind: 'ok' });
  });

  test('revoked consent (403) is deferred with the permission, the mailbox and the consent link; it goes once consent is back', async () => {
    graph.setMode({ kind: 'revoked' });
    await smtplibSend(
      relay.smtpPort,
      MAILBOX,
      ['boss@example.com'],
      scan('no consent', randomBytes(500)),
    );
    const line = await recipientLog(relay, 'deferred', 'ErrorAccessDenied');
    const error = String(line.error);
    assert.match(error, /application permission Mail\.Send/);
    assert.ok(error.includes(MAILBOX), error);
    assert.ok(
      error.includes(
        `https://login.microsoftonline.com/${graph.tenant}/adminconsent?client_id=${graph.clientId}`,
      ),
      error,
    );
    const queue = await relay.cli(['queue', 'list', '--json', '--config', relay.configFile]);
    assert.match(queue.stdout, /Mail\.Send/);
    graph.setMode({ kind: 'ok' });
    await deliveredCount(relay, 4);
  });

  test("the admin page's test mail goes through Graph and shows its answer", async () => {
    const result = await web.request('POST', '/api/test-mail', {
      json: { to: 'boss@example.com' },
      headers: { 'x-csrf-token': web.csrf },
    });
    assert.equal(result.status, 200, result.text);
    const body = JSON.parse(result.text) as { kind: string; reply: string };
    assert.equal(body.kind, 'delivered', result.text);
    assert.match(body.reply, /Microsoft Graph accepted it/);
  });

  test('an expired client secret is named in the queue and on the dashboard', async () => {
    graph.setMode({ kind: 'expired-secret' });
    await smtplibSend(
      relay.smtpPort,
      MAILBOX,
      ['boss@example.com'],
      scan('expired secret', randomBytes(500)),
    );
    const line = await recipientLog(relay, 'deferred', 'AADSTS7000222');
    assert.match(String(line.error), /client secret has expired/);
    const status = await eventually(
      'the dashboard to name the expired secret',
      async () => {
        const reply = await web.get('/api/status');
        return reply.text.includes('AADSTS7000222') ? reply.text : undefined;
      },
      { timeoutMs: 10_000 },
    );
    const overview = JSON.parse(status) as {
      upstream: {
        reachability: string;
        lastError: { text: string } | null;
        signIn: { state: string; reason?: string } | null;
      };
    };
    assert.equal(overview.upstream.signIn?.state, 'needs-consent');
    assert.match(
      overview.upstream.signIn?.reason ?? '',
      /client secret has expired \(AADSTS7000222\)/,
    );
    assert.equal(overview.upstream.reachability, 'failing');
    assert.match(overview.upstream.lastError?.text ?? '', /AADSTS7000222/);
    assertNoSecrets(relay, graph);
  });

  test('the settings page offers Graph beside SMTP, with the Entra ID steps, and never shows the secret', async () => {
    const page = await web.get('/settings');
    assert.match(page.text, /<option value="graph" selected>Microsoft 365 through Microsoft Graph/);
    assert.match(
      page.text,
      /Microsoft Graph &gt; Application permissions<\/strong>: <code>Mail\.Send<\/code>/,
    );
    assert.match(page.text, /Grant admin consent/);
    assert.ok(!page.text.includes(graph.clientSecret));
    const saved = await web.post('/settings', {
      graphSender: 'mailbox',
      graphMailbox: 'relay@contoso.test',
    });
    assert.equal(saved.status, 303, saved.text.slice(0, 300));
    const settings = JSON.parse((await web.get('/api/settings')).text) as {
      config: { delivery: { graph: Record<string, unknown> } };
    };
    assert.equal(settings.config.delivery.graph.mailbox, 'relay@contoso.test');
    assert.equal(settings.config.delivery.graph.clientSecret, undefined, 'the API shows no secret');
    assert.equal(settings.config.delivery.graph.clientSecretSet, true);
    const refused = await web.post('/settings', { graphSender: 'mailbox', graphMailbox: '' });
    assert.match(refused.text, /Name the mailbox to send from/);
  });
});

describe('Microsoft Graph pre-flight check', () => {
  let graph: FakeGraph;
  before(async () => {
    graph = await startFakeGraph();
  });
  after(() => graph.close());

  /** A fresh sign-in each time: what the check sees is what the token endpoint says now */
  const check = (overrides: Record<string, unknown> = {}) => {
    const dataDir = mkdtempSync(path.join(tmpdir(), 'edge-relay-graph-check-'));
    const base = graphConfig(graph);
    const config = resolveConfig(
      { dataDir, delivery: { ...base.delivery, graph: { ...base.delivery.graph, ...overrides } } },
      'test',
    );
    const tokens = new OAuthClient({ config: () => config, dataDir, log: silentLogger() });
    return graphCheck(config, tokens, 'contoso.test');
  };

  test('signs in, finds Mail.Send and Mail.ReadWrite granted and the mailbox there', async () => {
    graph.setRoles(['Mail.Send', 'Mail.ReadWrite']);
    const result = await check({ sender: 'mailbox', mailbox: MAILBOX });
    assert.equal(result.status, 'ok', result.summary);
    assert.match(result.summary, /scanner@contoso\.test is a mailbox it can send from/);
  });

  test('without Mail.Send granted: a problem that names the permission and the consent link', async () => {
    graph.setRoles(['User.Read.All']);
    const result = await check();
    assert.equal(result.status, 'problem');
    assert.match(result.summary, /no application permission Mail\.Send/);
    assert.ok(
      result.fix?.includes(
        `https://login.microsoftonline.com/${graph.tenant}/adminconsent?client_id=${graph.clientId}`,
      ),
      result.fix,
    );
    graph.setRoles(['Mail.Send']);
    const noDrafts = await check();
    assert.equal(noDrafts.status, 'warning');
    assert.match(noDrafts.summary, /over 3 MB/);
  });

  test('an expired client secret is named', async () => {
    graph.setMode({ kind: 'expired-secret' });
    const result = await check();
    assert.equal(result.status, 'problem');
    assert.match(result.summary, /client secret has expired \(AADSTS7000222\)/);
    graph.setMode({ kind: 'ok' });
  });
});
