/**
 * Local mailboxes, maildir style. Under <dataDir>/mailboxes:
 *
 *   users.json          name -> scrypt hash (mode 0600)
 *   <name>/tmp/         messages being delivered
 *   <name>/new/         delivered messages, one file each, stored with CRLF line endings
 *   <name>/delete.json  deletions being applied (a redo journal; see deleteMany)
 *
 * A message file's name is its stable POP3 unique id. A message from the queue
 * is named after its queue id, so delivering it again after a crash (the
 * mailbox had it, the queue had not yet noted that) finds it and adds no copy.
 */
import { randomBytes } from 'node:crypto';
import { createReadStream, existsSync, promises as fs } from 'node:fs';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { RelayError, UsageError, errnoCode, storageFailure } from '../errors.js';
import type { Logger } from '../log.js';
import { isQueueId } from '../spool/ids.js';
import { MAILBOX_NAME, mailboxNameProblem } from './names.js';
import { ensureDir, fsyncDir, readJsonFile, writeFileAtomic } from '../util/fsx.js';
import { updateJsonFile } from '../util/locks.js';
import { hashPassword, passwordProblem, verifyPassword } from '../util/password.js';

export interface MailboxMessage {
  uid: string;
  size: number;
  deliveredAt: Date;
}

interface UserRecord {
  hash: string | null;
  createdAt: string;
}

type Users = Record<string, UserRecord>;

const UID = /^[0-9a-z]+\.[0-9A-Za-z_-]+$/;

export function parseMailboxName(text: string): string {
  const name = text.toLowerCase();
  const problem = mailboxNameProblem(name);
  if (problem) throw new UsageError(problem);
  return name;
}

export class MailboxStore {
  private constructor(
    readonly root: string,
    private readonly log: Logger,
  ) {}

  static async open(dataDir: string, log: Logger): Promise<MailboxStore> {
    const store = new MailboxStore(path.resolve(dataDir, 'mailboxes'), log);
    await ensureDir(store.root);
    return store;
  }

  private usersFile(): string {
    return path.join(this.root, 'users.json');
  }

  private dir(name: string, sub?: 'tmp' | 'new'): string {
    return sub ? path.join(this.root, name, sub) : path.join(this.root, name);
  }

  private async readUsers(): Promise<Users> {
    return (await readJsonFile<Users>(this.usersFile())) ?? {};
  }

  /** Read, change, write the users file as one step, against other processes too; slow work (hashing) happens before */
  private updateUsers<T>(change: (users: Users) => T | Promise<T>): Promise<T> {
    return updateJsonFile<Users, T>(this.usersFile(), () => ({}), change);
  }

  /** Whether mail for NAME is delivered here (the folder is the source of truth, so other processes see changes at once) */
  exists(name: string): boolean {
    return MAILBOX_NAME.test(name) && existsSync(this.dir(name, 'new'));
  }

  async names(): Promise<string[]> {
    return Object.keys(await this.readUsers()).sort();
  }

  /** Creates a mailbox; a null password makes one that receives mail but can't log in yet */
  async add(nameText: string, password: string | null): Promise<void> {
    const name = parseMailboxName(nameText);
    const hash = password === null ? null : await this.hash(password);
    await this.updateUsers(async (users) => {
      if (users[name]) throw new UsageError(`Mailbox "${name}" already exists`);
      users[name] = { hash, createdAt: new Date().toISOString() };
      await ensureDir(this.dir(name, 'tmp'));
      await ensureDir(this.dir(name, 'new'));
    });
    this.log.info({ mailbox: name }, 'Mailbox created');
  }

  /** Creates the mailbox if it is missing (the postmaster mailbox always exists) */
  async ensure(name: string): Promise<void> {
    if (!(await this.readUsers())[name]) await this.add(name, null);
  }

  async setPassword(nameText: string, password: string): Promise<void> {
    const name = parseMailboxName(nameText);
    const hash = await this.hash(password);
    await this.updateUsers((users) => {
      const user = users[name];
      if (!user) throw new UsageError(`No mailbox named "${name}"`);
      user.hash = hash;
    });
  }

  /**
   * Removes a mailbox with its messages. Every caller (CLI, web page, API)
   * names the postmaster mailbox, which must stay: bounces and alerts go there
   */
  async remove(nameText: string, postmaster: string): Promise<void> {
    const name = parseMailboxName(nameText);
    if (name === postmaster)
      throw new UsageError(
        `The postmaster mailbox "${name}" receives bounces and alerts and can't be removed`,
      );
    await this.updateUsers((users) => {
      if (!users[name]) throw new UsageError(`No mailbox named "${name}"`);
      delete users[name];
    });
    await fs.rm(this.dir(name), { recursive: true, force: true });
    this.log.info({ mailbox: name }, 'Mailbox removed');
  }

  /** True only for an existing mailbox with a password set that matches */
  async verify(nameText: string, password: string): Promise<boolean> {
    const user = (await this.readUsers())[nameText.toLowerCase()];
    return !!user?.hash && (await verifyPassword(password, user.hash));
  }

  private async hash(password: string): Promise<string> {
    const problem = passwordProblem(password);
    if (problem) throw new UsageError(problem);
    return hashPassword(password);
  }

  /**
   * Delivers atomically and durably: tmp -> fsync -> rename into new/ -> fsync folder.
   * `tag` is a queue id (delivered at most once) or a word such as "alert"
   */
  async deliver(name: string, source: Readable, tag = 'msg'): Promise<MailboxMessage> {
    if (!this.exists(name))
      throw new RelayError(`No such mailbox here: ${name}`, {
        kind: 'permanent',
        smtpCode: 550,
        enhanced: '5.1.1',
      });
    const now = new Date();
    const uid = messageUid(tag, now);
    const final = path.join(this.dir(name, 'new'), uid);
    const already = await fs.stat(final).catch(() => undefined);
    if (already) {
      source.destroy();
      // An earlier attempt may have renamed it and failed before the folder was on disk
      await fsyncDir(this.dir(name, 'new'));
      this.log.info(
        { mailbox: name, uid },
        'Message already in the mailbox (delivered before a restart); not added again',
      );
      return { uid, size: already.size, deliveredAt: already.mtime };
    }
    const temp = path.join(this.dir(name, 'tmp'), uid);
    try {
      await writeDurably(temp, source);
      await fs.rename(temp, final);
      await fsyncDir(this.dir(name, 'new'));
    } catch (err) {
      await fs.rm(temp, { force: true });
      throw storageFailure(err, `storing the message in mailbox ${name}`);
    }
    const { size } = await fs.stat(final);
    return { uid, size, deliveredAt: now };
  }

  /** Messages oldest first */
  async list(name: string): Promise<MailboxMessage[]> {
    const dir = this.dir(name, 'new');
    const files = (await fs.readdir(dir)).filter((file) => UID.test(file));
    const messages = await Promise.all(
      files.map(async (uid) => {
        const stat = await fs.stat(path.join(dir, uid)).catch(() => undefined);
        return stat && { uid, size: stat.size, deliveredAt: stat.mtime };
      }),
    );
    return messages
      .filter((m): m is MailboxMessage => !!m)
      .sort(
        (a, b) => a.deliveredAt.getTime() - b.deliveredAt.getTime() || a.uid.localeCompare(b.uid),
      );
  }

  read(name: string, uid: string): Readable {
    if (!UID.test(uid)) throw new UsageError(`Not a message id: "${uid}"`);
    return createReadStream(path.join(this.dir(name, 'new'), uid));
  }

  /**
   * Deletes a set of messages all-or-nothing: the list is journaled first, so a
   * crash midway is finished at the next start, never left half done.
   */
  async deleteMany(name: string, uids: readonly string[]): Promise<void> {
    if (uids.length === 0) return;
    const journal = path.join(this.dir(name), 'delete.json');
    await writeFileAtomic(journal, JSON.stringify(uids.filter((uid) => UID.test(uid))), 0o600);
    await this.applyJournal(name);
  }

  private async applyJournal(name: string): Promise<void> {
    const journal = path.join(this.dir(name), 'delete.json');
    const uids = await readJsonFile<string[]>(journal).catch(() => []);
    if (!uids) return;
    for (const uid of uids)
      if (UID.test(uid)) await fs.rm(path.join(this.dir(name, 'new'), uid), { force: true });
    await fsyncDir(this.dir(name, 'new'));
    await fs.rm(journal, { force: true });
  }

  /** Startup: half-delivered files go, interrupted deletions are finished */
  async recover(): Promise<void> {
    for (const name of await this.names()) {
      if (!existsSync(this.dir(name))) continue;
      const temps = await fs.readdir(this.dir(name, 'tmp')).catch(() => [] as string[]);
      await Promise.all(
        temps.map((file) => fs.rm(path.join(this.dir(name, 'tmp'), file), { force: true })),
      );
      await this.applyJournal(name);
      if (temps.length)
        this.log.warn(
          { mailbox: name, removed: temps.length },
          'Removed half-delivered mailbox files',
        );
    }
  }

  async usage(name: string): Promise<{ messages: number; bytes: number }> {
    const messages = await this.list(name).catch((err) => {
      if (errnoCode(err) === 'ENOENT') return [];
      throw err;
    });
    return { messages: messages.length, bytes: messages.reduce((sum, m) => sum + m.size, 0) };
  }

  /** Removes one message by uid (retention, quota); logged by the caller */
  async removeMessage(name: string, uid: string): Promise<void> {
    await fs.rm(path.join(this.dir(name, 'new'), uid), { force: true });
  }
}

/** A queue id makes the same name on every attempt; anything else gets a fresh unique one */
function messageUid(tag: string, now: Date): string {
  if (isQueueId(tag)) return `${tag.slice(0, 9).toLowerCase()}.${tag}`;
  return `${now.getTime().toString(36)}.${tag.replace(/[^0-9A-Za-z_-]/g, '')}${randomBytes(3).toString('hex')}`;
}

/**
 * Streams `source` into a new file and fsyncs it through the file handle, so
 * durability does not hang on createWriteStream's `flush` (Node >= 20.10 only)
 */
async function writeDurably(file: string, source: Readable): Promise<void> {
  const handle = await fs.open(file, 'w', 0o600);
  try {
    // writeFile on a handle writes the whole chunk at the current position
    for await (const chunk of source) await handle.writeFile(chunk as Buffer);
    await handle.sync();
  } finally {
    await handle.close();
  }
}
