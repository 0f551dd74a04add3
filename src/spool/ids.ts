import { randomBytes } from 'node:crypto';
import { UsageError } from '../errors.js';

/** A queue id: uppercase base36, time-ordered, safe as a file name */
export type QueueId = string & { readonly __brand: 'QueueId' };

const QUEUE_ID = /^[0-9A-Z]{12,24}$/;

/** Random bytes are drawn in batches: one call into the kernel for 512 ids, not one per message */
const RANDOM_BYTES_PER_ID = 6;
let entropy = Buffer.alloc(0);

function randomNumber(): number {
  if (entropy.length < RANDOM_BYTES_PER_ID) entropy = randomBytes(RANDOM_BYTES_PER_ID * 512);
  const value = entropy.readUIntBE(0, RANDOM_BYTES_PER_ID);
  entropy = entropy.subarray(RANDOM_BYTES_PER_ID);
  return value;
}

export function newQueueId(now = Date.now()): QueueId {
  const random = randomNumber().toString(36).padStart(10, '0');
  return `${now.toString(36).padStart(9, '0')}${random}`.toUpperCase() as QueueId;
}

export const isQueueId = (text: string): text is QueueId => QUEUE_ID.test(text);

/** Validates ids typed by a person (CLI, web) before they get near a path */
export function parseQueueId(text: string): QueueId {
  if (!isQueueId(text)) throw new UsageError(`Not a queue id: "${text}"`);
  return text;
}
