/**
 * What the spool stores about a message, and the pure rules over it.
 * Two records per message: the arrival (written once, with the message) and
 * the delivery state (replaced after every attempt).
 */
import type { QueueId } from './ids.js';

/** A recipient's status as stored. `held` is not stored: it follows from the message being on hold */
export type StoredStatus = 'queued' | 'deferred' | 'delivered' | 'bounced' | 'local';
export type RecipientStatus = StoredStatus | 'held';

export const PENDING: ReadonlySet<StoredStatus> = new Set(['queued', 'deferred']);

export interface ClientInfo {
  address: string;
  helo: string;
  hostname?: string;
}

export interface Arrival {
  v: 1;
  id: QueueId;
  /** Envelope sender; "" is the null sender of bounce reports */
  from: string;
  to: string[];
  receivedAt: string;
  client: ClientInfo;
}

export interface RecipientState {
  address: string;
  status: StoredStatus;
  /** The last reply or failure for this recipient, e.g. "451 4.3.0 Try later (upstream.example)" */
  lastError?: string;
  /** A bounced recipient's RFC 3463 status for the bounce report, e.g. "5.1.1" (failure-policy.ts decides it) */
  dsnStatus?: string;
  /** Where it went (upstream host, mailbox name) once final */
  detail?: string;
}

export interface DeliveryState {
  attempts: number;
  nextAttempt: string;
  lastError: string | null;
  held: boolean;
  recipients: RecipientState[];
  /** A delay warning was sent (at most one per message) */
  delayWarned?: boolean;
  /**
   * Bounced recipients whose report is not queued yet. The outcome is saved
   * before the report is written, so a report that fails (a full disk) is
   * retried instead of sending the delivered recipients a second copy.
   */
  unreported?: string[];
}

export interface QueueEntry {
  arrival: Arrival;
  state: DeliveryState;
  /** Message size in bytes, as received (including our Received header) */
  size: number;
}

export function initialState(arrival: Arrival): DeliveryState {
  return {
    attempts: 0,
    nextAttempt: arrival.receivedAt,
    lastError: null,
    held: false,
    recipients: arrival.to.map((address) => ({ address, status: 'queued' })),
  };
}

export const pendingRecipients = (state: DeliveryState): RecipientState[] =>
  state.recipients.filter((r) => PENDING.has(r.status));

export const unreportedBounces = (state: DeliveryState): RecipientState[] =>
  state.recipients.filter((r) => r.status === 'bounced' && state.unreported?.includes(r.address));

/** Nothing left to deliver and nothing left to report: the message can leave the queue */
export const isFinished = (state: DeliveryState): boolean =>
  pendingRecipients(state).length === 0 && unreportedBounces(state).length === 0;

export function visibleStatus(state: DeliveryState, recipient: RecipientState): RecipientStatus {
  return state.held && PENDING.has(recipient.status) ? 'held' : recipient.status;
}

/** The JSON shape of `queue list --json` (an outside interface: scripts read it; see docs/queue.md) */
export interface QueueListItem {
  id: QueueId;
  from: string;
  recipients: { address: string; status: RecipientStatus; lastError?: string }[];
  size: number;
  attempts: number;
  nextAttempt: string | null;
  lastError: string | null;
  receivedAt: string;
  held: boolean;
  client: ClientInfo;
  /** Why a message due now is not being sent: an upstream's sending limits hold it back */
  heldBack?: string;
}

export function toListItem(entry: QueueEntry): QueueListItem {
  const { arrival, state } = entry;
  return {
    id: arrival.id,
    from: arrival.from,
    recipients: state.recipients.map((r) => ({
      address: r.address,
      status: visibleStatus(state, r),
      ...(r.lastError ? { lastError: r.lastError } : {}),
    })),
    size: entry.size,
    attempts: state.attempts,
    nextAttempt: state.held ? null : state.nextAttempt,
    lastError: state.lastError,
    receivedAt: arrival.receivedAt,
    held: state.held,
    client: arrival.client,
  };
}

const isString = (v: unknown): v is string => typeof v === 'string';

/** Parses an arrival line; returns null for anything damaged */
export function parseArrival(text: string): Arrival | null {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch {
    return null;
  }
  const a = data as Partial<Arrival>;
  const ok =
    a.v === 1 &&
    isString(a.id) &&
    isString(a.from) &&
    Array.isArray(a.to) &&
    a.to.length > 0 &&
    a.to.every(isString) &&
    isString(a.receivedAt) &&
    typeof a.client === 'object' &&
    a.client !== null &&
    isString(a.client.address);
  return ok ? (a as Arrival) : null;
}

const STORED: ReadonlySet<string> = new Set([
  'queued',
  'deferred',
  'delivered',
  'bounced',
  'local',
]);

export function parseState(text: string, arrival: Arrival): DeliveryState | null {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch {
    return null;
  }
  const s = data as Partial<DeliveryState>;
  const ok =
    typeof s.attempts === 'number' &&
    isString(s.nextAttempt) &&
    typeof s.held === 'boolean' &&
    Array.isArray(s.recipients) &&
    s.recipients.length === arrival.to.length &&
    s.recipients.every((r) => isString(r?.address) && STORED.has(r.status)) &&
    (s.unreported === undefined || (Array.isArray(s.unreported) && s.unreported.every(isString)));
  return ok ? (s as DeliveryState) : null;
}
