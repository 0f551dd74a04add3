/** A message the relay accepted: its queue id, and its queue entry once it has been tried */
import assert from 'node:assert/strict';
import { queueList, type QueueItem } from './faults.js';
import type { RunningRelay } from './relay.js';
import { eventually } from './wait.js';

/** The queue id that the relay's 250 reply to DATA names (fails the test when it names none) */
export function queuedId(reply: string): string {
  const id = /queued as ([0-9A-Z]+)/.exec(reply)?.[1];
  assert.ok(id, `250 reply names the queue id: ${reply}`);
  return id;
}

/** Waits until message `id` has been tried at least once; resolves with its queue entry */
export function triedOnce(
  relay: Pick<RunningRelay, 'cli'>,
  id: string,
  { timeoutMs = 15_000 }: { timeoutMs?: number } = {},
): Promise<QueueItem> {
  return eventually(
    `message ${id} tried at least once`,
    async () => (await queueList(relay)).find((item) => item.id === id && item.attempts >= 1),
    { timeoutMs },
  );
}
