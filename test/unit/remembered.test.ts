/** remembered: one computation per key, the same answers after the memory is emptied at its limit */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { remembered } from '../../src/util/remembered.js';

test('each key is computed once, falsy answers included, and the memory stays within its limit', () => {
  const asked: string[] = [];
  const isLocal = remembered((address: string) => {
    asked.push(address);
    return address.startsWith('10.');
  }, 2);
  assert.equal(isLocal('10.0.0.5'), true);
  assert.equal(isLocal('8.8.8.8'), false);
  assert.equal(isLocal('10.0.0.5'), true);
  assert.equal(isLocal('8.8.8.8'), false, 'a false answer is remembered too');
  assert.deepEqual(asked, ['10.0.0.5', '8.8.8.8']);
  assert.equal(isLocal('192.168.1.1'), false, 'a third key empties the memory first');
  assert.equal(isLocal('10.0.0.5'), true, 'and the answer is the same when computed again');
  assert.deepEqual(asked, ['10.0.0.5', '8.8.8.8', '192.168.1.1', '10.0.0.5']);
});
