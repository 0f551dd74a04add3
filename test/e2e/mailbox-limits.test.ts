/**
 * Retention and quota in the running relay: the mailbox-limits job also runs
 * shortly after start (src/jobs/housekeeping.ts), so a restart applies them.
 * Old messages go first, then the oldest until under quota; each removal is
 * logged and POP3 STAT shows what is left.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { python } from '../support/clients.js';
import { runCli, launchRelay, testConfig } from '../support/relay.js';
import { eventually } from '../support/wait.js';

const DAY_S = 86_400;
const SIZE = 1_000;
const QUOTA = 3 * SIZE;

const STAT_UIDL = `
import json, poplib, sys
p = poplib.POP3('127.0.0.1', int(sys.argv[1]), timeout=20)
p.user('scans'); p.pass_('scans-secret-1')
print(json.dumps({'stat': list(p.stat()), 'uids': [l.split()[1].decode() for l in p.uidl()[1]]}))
p.quit()
`;

test(
  'retention and quota: old messages, then the oldest beyond the quota, are removed and logged; POP3 STAT shows the rest',
  { timeout: 60_000 },
  async () => {
    const config = { mailbox: { retention: '30d', quota: QUOTA } };
    // The mailbox and its messages are there before the relay starts, as after a restart
    const dir = mkdtempSync(path.join(tmpdir(), 'edge-relay-test-'));
    const dataDir = path.join(dir, 'data');
    const configFile = path.join(dir, 'config.json');
    writeFileSync(configFile, JSON.stringify(testConfig(dataDir, config)));
    const added = await runCli(
      ['mailbox', 'add', 'scans', '--password-stdin', '--config', configFile],
      { stdin: 'scans-secret-1\n', cwd: dir },
    );
    assert.equal(added.code, 0, added.stderr);

    // Two messages 40 and 35 days old, four recent ones a minute apart: 6000 bytes for a 3000-byte quota
    const now = Date.now() / 1000;
    const ages = [40 * DAY_S, 35 * DAY_S, 240, 180, 120, 60];
    const uids = ages.map((_, n) => `old${n}.fixture`);
    for (const [n, age] of ages.entries()) {
      const file = path.join(dataDir, 'mailboxes/scans/new', uids[n]!);
      writeFileSync(file, `Subject: message ${n}\r\n\r\n`.padEnd(SIZE - 2, 'x') + '\r\n');
      utimesSync(file, now - age, now - age);
    }

    const relay = await launchRelay({ config, dir });
    try {
      const removals = () =>
        relay.logs.filter((l) => typeof l.reason === 'string' && l.mailbox === 'scans');
      await relay.waitForLog(() => removals().length >= 3, 20_000);
      // The sweep holds the mailbox's lock until it is done: a POP3 login that gets in comes after it
      const result = await eventually('a POP3 login after the sweep', async () => {
        const attempt = await python(STAT_UIDL, [String(relay.pop3Port)]);
        return attempt.code === 0 && attempt;
      });
      assert.deepEqual(JSON.parse(result.stdout), { stat: [3, QUOTA], uids: uids.slice(3) });
      assert.deepEqual(
        removals().map((l) => [l.uid, l.reason, l.size, l.msg]),
        [
          [uids[0], 'retention', SIZE, 'Removed a message older than 30d'],
          [uids[1], 'retention', SIZE, 'Removed a message older than 30d'],
          [uids[2], 'quota', SIZE, 'Removed the oldest message: mailbox over quota'],
        ],
      );
    } finally {
      await relay.stop();
    }
  },
);
