/**
 * What the POP3 protocol needs from storage, and nothing more. The session
 * code only sees this interface; mailboxBackend() adapts our MailboxStore.
 */
import type { Readable } from 'node:stream';
import type { MailboxLocks, Release } from '../mailbox/locks.js';
import { parseMailboxName, type MailboxStore } from '../mailbox/store.js';
import { verifyNoSuchUser } from '../util/password.js';

export interface StoredMessage {
  /** Stable across sessions and restarts: the UIDL */
  uid: string;
  /** Exact octets as sent (the store keeps CRLF line endings) */
  size: number;
}

export interface Pop3Backend {
  /** The mailbox these credentials open, or null */
  authenticate(user: string, password: string): Promise<string | null>;
  /** Exclusive access for one session; null when another holds it */
  lock(mailbox: string, holder: string): Release | null;
  /** Who holds the lock, for the [IN-USE] reply */
  lockHolder(mailbox: string): string | undefined;
  /** The messages now, oldest first: the session's snapshot */
  list(mailbox: string): Promise<StoredMessage[]>;
  read(mailbox: string, uid: string): Readable;
  /** Removes all of `uids` or none (UPDATE state) */
  commitDeletions(mailbox: string, uids: readonly string[]): Promise<void>;
}

export function mailboxBackend(store: MailboxStore, locks: MailboxLocks): Pop3Backend {
  return {
    async authenticate(user, password) {
      let name: string | undefined;
      try {
        name = parseMailboxName(user);
      } catch {
        name = undefined;
      }
      // A name that does not exist costs a full password check too: the answer's timing tells nothing
      if (name === undefined || !store.exists(name)) {
        await verifyNoSuchUser(password);
        return null;
      }
      return (await store.verify(name, password)) ? name : null;
    },
    lock: (mailbox, holder) => locks.tryAcquire(mailbox, holder),
    lockHolder: (mailbox) => locks.holder(mailbox),
    list: async (mailbox) => (await store.list(mailbox)).map(({ uid, size }) => ({ uid, size })),
    read: (mailbox, uid) => store.read(mailbox, uid),
    commitDeletions: (mailbox, uids) => store.deleteMany(mailbox, uids),
  };
}
