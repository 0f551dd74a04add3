/**
 * What a mailbox may be called (pure). Each mailbox is a folder beside the
 * store's own files (users.json and its lock and temporary files), so a name
 * shaped like one of those is reserved: it would collide with them.
 */

export const MAILBOX_NAME = /^[a-z0-9][a-z0-9._-]{0,63}$/;

const STORE_FILE = /\.(json|lock|tmp)$/;

/** Why `name` (lowercase) can't be a mailbox, or undefined when it can */
export function mailboxNameProblem(name: string): string | undefined {
  if (!MAILBOX_NAME.test(name))
    return `Not a valid mailbox name: "${name}" (letters, digits, ".", "_" and "-"; up to 64)`;
  if (STORE_FILE.test(name))
    return `That name is reserved: "${name}" (names ending in .json, .lock or .tmp are the mailbox store's own files)`;
  return undefined;
}
