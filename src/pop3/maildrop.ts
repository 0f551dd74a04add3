/**
 * One session's view of a mailbox: the messages present at login, numbered
 * from 1, with deletion marks that only become real in the UPDATE state.
 */
import type { StoredMessage } from './backend.js';
import { printable } from './text.js';

export type Lookup =
  | { ok: true; number: number; message: StoredMessage }
  | { ok: false; error: string };

const NUMBER = /^[1-9][0-9]{0,9}$/;

export class Maildrop {
  private readonly deleted = new Set<number>();

  constructor(
    readonly mailbox: string,
    private readonly messages: readonly StoredMessage[],
  ) {}

  /** A message by its number as the client typed it; deleted ones are not found */
  lookup(raw: string | undefined): Lookup {
    const text = raw?.trim();
    if (!text) return { ok: false, error: 'A message number is needed' };
    if (!NUMBER.test(text))
      return { ok: false, error: `Not a message number: "${printable(text, 20)}"` };
    const number = Number(text);
    const message = this.messages[number - 1];
    if (!message)
      return { ok: false, error: `No message ${number}; there are ${this.messages.length}` };
    if (this.deleted.has(number))
      return { ok: false, error: `Message ${number} is already deleted` };
    return { ok: true, number, message };
  }

  /** Messages not marked deleted, with their numbers */
  visible(): { number: number; message: StoredMessage }[] {
    return this.messages.flatMap((message, index) =>
      this.deleted.has(index + 1) ? [] : [{ number: index + 1, message }],
    );
  }

  stat(): { count: number; bytes: number } {
    const visible = this.visible();
    return {
      count: visible.length,
      bytes: visible.reduce((sum, { message }) => sum + message.size, 0),
    };
  }

  markDeleted(number: number): void {
    this.deleted.add(number);
  }

  /** Unmarks everything (RSET) */
  reset(): void {
    this.deleted.clear();
  }

  /** What UPDATE removes */
  deletedUids(): string[] {
    return [...this.deleted]
      .sort((a, b) => a - b)
      .map((number) => this.messages[number - 1]?.uid ?? '')
      .filter(Boolean);
  }
}
