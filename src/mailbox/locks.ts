/**
 * Who is working on a mailbox right now. A POP3 session holds its mailbox's
 * lock from login to the end of UPDATE; housekeeping (retention, quota) takes
 * the same lock, so neither ever sees the other's half-done work.
 */

/** Gives the lock back; calling it twice is harmless */
export type Release = () => void;

export class MailboxLocks {
  private readonly held = new Map<string, string>();

  /** The lock, or null when someone else holds it */
  tryAcquire(mailbox: string, holder: string): Release | null {
    if (this.held.has(mailbox)) return null;
    this.held.set(mailbox, holder);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.held.delete(mailbox);
    };
  }

  /** Who holds the lock of `mailbox`, for messages and logs */
  holder(mailbox: string): string | undefined {
    return this.held.get(mailbox);
  }
}
