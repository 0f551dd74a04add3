import { randomBytes } from 'node:crypto';
import { UsageError } from '../errors.js';

/** A queue id: uppercase base36, time-ordered, safe as a file name */
export type QueueId = string & { readonly __brand: 'QueueId' };

const QUEUE_ID = /^[0-9A-Z]{12,24}$/;

export function newQueueId(now = Date.now()): QueueId {
  const random = BigInt(`0x${randomBytes(6).toString('hex')}`).toString(36).padStart(10, '0');
  return `${now.toString(36).padStart(9, '0')}${random}`.toUpperCase() as QueueId;
}

export const isQueueId = (text: string): text is QueueId => QUEUE_ID.test(text);

/** Validates ids typed by a person (CLI, web) before they get near a path */
export function parseQueueId(text: string): QueueId {
  if (!isQueueId(text)) throw new UsageError(`Not a queue id: "${text}"`);
  return text;
}
