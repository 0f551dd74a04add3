/**
 * POP3 logins under attack, against the real relay with its shipped limits
 * (50 connections): guessers that hang up early, floods of bad clients, many
 * source addresses (127.0.0.x stand for LAN hosts) aiming at one mailbox,
 * and whether the answer's timing tells which mailbox names exist.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { RawPop3 } from '../support/pop3.js';
import { eventually } from '../support/wait.js';
import { launchRelay, type RunningRelay } from '../support/relay.js';

const PASSWORD = 'the-right-password-1';
/** The relay's LOGIN_GRACE_MS (src/pop3/server.ts): a full server evicts a session not logged in for this long */
const LOGIN_GRACE_MS = 2_000;
/** Mailboxes timing0.. for the timing test: one fresh name per pair */
const TIMING_PAIRS = 7;

/** One login from `localAddress`: the reply to PASS (or the refusal at connect) and how long PASS took */
async function tryLogin(
  port: number,
  localAddress: string,
  user: string,
  password: string,
  hangUpAfterMs = 15_000,
): Promise<{ reply: string; ms: number }> {
  const client = await RawPop3.connect(port, { localAddress });
  try {
    const greeting = await client.line();
    if (!greeting.startsWith('+OK')) return { reply: greeting, ms: 0 };
    await client.command(`USER ${user}`);
    const started = performance.now();
    const reply = await client.command(`PASS ${password}`, hangUpAfterMs).catch(() => 'hung up');
    return { reply, ms: performance.now() - started };
  } finally {
    client.close();
  }
}

const median = (values: number[]): number =>
  [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] ?? NaN;

describe('POP3 login throttling', () => {
  let relay: RunningRelay;
  let port: number;
  const failedChecks = (user: string) =>
    relay.logs.filter((l) => l.msg === 'POP3 login failed' && l.user === user).length;

  before(async () => {
    relay = await launchRelay();
    port = relay.pop3Port ?? 0;
    const names = [
      'alice',
      'bob',
      'carol',
      'dave',
      'erin',
      ...Array.from({ length: TIMING_PAIRS }, (_, i) => `timing${i}`),
    ];
    // Sequential: each is one CLI process, and they share the users file
    for (const name of names) {
      const added = await relay.cli(['mailbox', 'add', name, '--password-stdin'], `${PASSWORD}\n`);
      assert.equal(added.code, 0, added.stderr);
    }
  });
  after(async () => {
    await relay.stop();
  });

  test('guessers that hang up after 150 ms get no more guesses checked than ones that wait for each answer', async () => {
    // Each guess from a new address, as from 2,000 hosts; the right password comes 12th
    const guesses = [...Array.from({ length: 11 }, (_, i) => `wrong-${i}`), PASSWORD];
    const deadline = Date.now() + 3_000;
    // What beat the old throttle: no +OK within 150 ms means wrong, so hang up and go on
    const hangUp = async () => {
      for (const [i, guess] of guesses.entries()) {
        if (Date.now() > deadline) return;
        await tryLogin(port, `127.0.0.${10 + i}`, 'alice', guess, 150);
      }
    };
    const patient = async () => {
      for (const [i, guess] of guesses.entries()) {
        if (Date.now() > deadline) return;
        await tryLogin(port, `127.0.0.${30 + i}`, 'bob', guess);
      }
    };
    await Promise.all([hangUp(), patient()]);
    const [hungUpChecks, patientChecks] = [failedChecks('alice'), failedChecks('bob')];
    console.log(
      `pop3-auth: guesses checked in 3 s from 12 addresses at one mailbox: ${hungUpChecks} hanging up after 150 ms, ${patientChecks} waiting for each answer`,
    );
    assert.ok(
      hungUpChecks <= patientChecks + 1,
      `checked in 3 s: ${hungUpChecks} guesses hanging up early, ${patientChecks} waiting`,
    );
    assert.ok(patientChecks <= 4, `a patient guesser got ${patientChecks} guesses checked in 3 s`);
  });

  test('failures count per mailbox across many source addresses; the owner is not locked out', async () => {
    assert.match(
      (await tryLogin(port, '127.0.0.1', 'erin', PASSWORD)).reply,
      /^\+OK/,
      'erin reads her mail from 127.0.0.1',
    );
    const started = performance.now();
    const guesses = await Promise.all(
      Array.from({ length: 6 }, (_, i) =>
        tryLogin(port, `127.0.0.${60 + i}`, 'erin', `wrong-${i}`),
      ),
    );
    const refused = guesses.filter((g) =>
      /^-ERR \[SYS\/TEMP\] Too many logins from this address or to this mailbox; try again in \d+ seconds$/.test(
        g.reply,
      ),
    );
    const checked = guesses.filter((g) => g.reply === '-ERR [AUTH] Wrong mailbox name or password');
    assert.ok(
      refused.length >= 2,
      `six addresses at once: ${refused.length} refused unchecked (${guesses.map((g) => g.reply).join(' | ')})`,
    );
    assert.ok(
      refused.every((g) => g.ms < 5_500),
      'a refusal comes within the 5 s anyone waits',
    );
    assert.equal(checked.length + refused.length, 6);
    assert.ok(
      Math.max(...checked.map((g) => g.ms)) >= 1_400,
      'the checked guesses were spaced out, though each came from a new address',
    );
    assert.ok(performance.now() - started < 6_000);
    const owner = await tryLogin(port, '127.0.0.1', 'erin', PASSWORD);
    assert.match(owner.reply, /^\+OK Mailbox erin/);
    assert.ok(owner.ms < 1_000, `the owner's usual address got in at once (${owner.ms} ms)`);
  });

  test('a flood of bad clients (60 connections from 10 hosts) does not starve a good client', async () => {
    let stop = false;
    const seen = { refusedAtConnect: 0, guesses: 0 };
    const badClient = async (address: string) => {
      // Bounded: stops when told, and each round is bounded by the client's timeouts
      while (!stop) {
        const { reply } = await tryLogin(port, address, 'carol', `guess-${seen.guesses++}`).catch(
          () => ({ reply: 'connect failed' }),
        );
        if (reply.includes('Too many POP3 connections')) seen.refusedAtConnect++;
        // The flood's pace (10 tries a second per client), not a wait for anything: a refused client would spin
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    };
    const throttled = () =>
      relay.logs.filter(
        (l) => l.msg.startsWith('POP3 login refused unchecked') && l.user === 'carol',
      ).length;
    const began = performance.now();
    const flood = Array.from({ length: 60 }, (_, i) => badClient(`127.0.0.${100 + (i % 10)}`));
    try {
      // At full strength: two guesses sent per bad client, carol's guesses checked and failing (the
      // second after the wait the first earned), and the throttle refusing the rest unchecked
      await eventually(
        'the flood at full strength',
        () => seen.guesses >= 120 && failedChecks('carol') >= 2 && throttled() >= 1,
        { timeoutMs: 15_000, everyMs: 50 },
      );
      console.log(
        `pop3-auth: flood of 60 bad clients from 10 hosts at full strength after ${Math.round(performance.now() - began)} ms: ${seen.refusedAtConnect} connections refused, ${seen.guesses} guesses sent, ${failedChecks('carol')} checked, ${throttled()} refused unchecked`,
      );
      for (let round = 0; round < 3; round++) {
        const good = await tryLogin(port, '127.0.0.1', 'dave', PASSWORD);
        assert.match(
          good.reply,
          /^\+OK Mailbox dave/,
          `round ${round}: the good client got in (${seen.refusedAtConnect} bad connections refused, ${seen.guesses} guesses)`,
        );
        assert.ok(good.ms < 1_000, `and at once (${good.ms} ms)`);
      }
    } finally {
      stop = true;
      await Promise.all(flood);
    }
  });

  test('50 silent connections from 10 hosts take every slot; a client that logs in still gets in, in place of the oldest', async () => {
    const silent = await Promise.all(
      Array.from({ length: 50 }, (_, i) =>
        RawPop3.connect(port, { localAddress: `127.0.0.${200 + (i % 10)}` }),
      ),
    );
    try {
      let firstGreetedAt = Infinity;
      const greetings = await Promise.all(
        silent.map(async (c) => {
          const greeting = await c.line();
          firstGreetedAt = Math.min(firstGreetedAt, performance.now());
          return greeting;
        }),
      );
      assert.ok(
        greetings.every((g) => g.startsWith('+OK')),
        'all 50 slots taken',
      );
      // A real client logs in within milliseconds; these have not, for longer than the 2 s grace. The relay
      // does nothing when the grace ends, so there is no signal to wait for: the time itself, counted from
      // the first greeting (its session is older still), is the condition
      const graceOver = firstGreetedAt + LOGIN_GRACE_MS + 100 - performance.now();
      await new Promise((resolve) => setTimeout(resolve, Math.max(graceOver, 0)));
      const good = await tryLogin(port, '127.0.0.1', 'dave', PASSWORD);
      assert.match(good.reply, /^\+OK Mailbox dave/);
      const told = await Promise.any(silent.map((c) => c.line(5_000)));
      assert.equal(
        told,
        '-ERR [SYS/TEMP] The server is full and this connection has not logged in; closing it',
      );
    } finally {
      silent.forEach((c) => c.close());
    }
  });

  test('a missing mailbox answers as slowly as a wrong password (within half a check either way)', async () => {
    // Pairs asked back to back share the machine's load: their ratio is what tells (a missing mailbox
    // answered without a password check would take a few ms against a scrypt's tens)
    const ratios: number[] = [];
    const real: number[] = [];
    const missing: number[] = [];
    // Each from a fresh address and to a fresh name, so no wait of the throttle is in the figures
    for (let i = 0; i < TIMING_PAIRS; i++) {
      const askWrong = () => tryLogin(port, `127.0.0.${150 + i}`, `timing${i}`, 'not-the-password');
      const askGhost = () => tryLogin(port, `127.0.0.${170 + i}`, `ghost${i}`, 'not-the-password');
      // Alternating which goes first, so neither gains from going second
      let wrong, ghost;
      if (i % 2) {
        wrong = await askWrong();
        ghost = await askGhost();
      } else {
        ghost = await askGhost();
        wrong = await askWrong();
      }
      assert.equal(wrong.reply, '-ERR [AUTH] Wrong mailbox name or password');
      assert.equal(ghost.reply, wrong.reply, 'the same words');
      real.push(wrong.ms);
      missing.push(ghost.ms);
      ratios.push(ghost.ms / wrong.ms);
    }
    const ratio = median(ratios);
    console.log(
      `pop3-auth: median answer ${median(real).toFixed(1)} ms for a wrong password, ${median(missing).toFixed(1)} ms for a missing mailbox; median ratio of ${TIMING_PAIRS} pairs ${ratio.toFixed(2)}`,
    );
    assert.ok(
      ratio > 0.5 && ratio < 1.5,
      `a missing mailbox took ${ratio.toFixed(2)} times as long as a wrong password (median of ${ratios.map((r) => r.toFixed(2)).join(', ')}); wrong passwords ${real.map(Math.round).join(', ')} ms, missing ${missing.map(Math.round).join(', ')} ms`,
    );
  });
});
