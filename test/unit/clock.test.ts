/** A clock that cannot be right is named, with what it breaks and what to check */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { clockProblem } from '../../src/util/clock.js';

test('a Pi that started without NTP, at a date long past, is told why TLS fails', () => {
  const problem = clockProblem(Date.UTC(2023, 4, 1, 8, 30));
  assert.match(
    problem ?? '',
    /^The clock says 2023-05-01 08:30 UTC, which cannot be right: certificate checks of the upstream fail/,
  );
  assert.match(problem ?? '', /NTP/);
});

test('a clock that may be right says nothing', () => {
  assert.equal(clockProblem(Date.now()), undefined);
  assert.equal(clockProblem(Date.UTC(2030, 0, 1)), undefined);
});
