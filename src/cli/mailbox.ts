/** edge-relay mailbox add | list | remove | password */
import { UsageError } from '../errors.js';
import { silentLogger } from '../log.js';
import { MailboxStore } from '../mailbox/store.js';
import { plural } from '../util/plural.js';
import { loadConfig, readPasswordFromStdin, type CommandContext } from './context.js';

export async function mailboxCommand(ctx: CommandContext): Promise<number> {
  const { config } = await loadConfig(ctx);
  const store = await MailboxStore.open(config.dataDir, silentLogger());
  const [sub, name] = ctx.args;
  switch (sub) {
    case 'list': {
      const names = await store.names();
      if (names.length === 0) ctx.out('No mailboxes yet');
      for (const mailbox of names) {
        const { messages, bytes } = await store.usage(mailbox);
        ctx.out(
          `${mailbox.padEnd(24)} ${plural(messages, 'message').padStart(15)} ${plural(bytes, 'byte').padStart(18)}`,
        );
      }
      return 0;
    }
    case 'add':
      await store.add(requireName(name, sub), await passwordFromStdin(ctx));
      ctx.out(
        `Mailbox ${name} created; it receives mail for ${name}@${config.mailbox.localDomains.join(`, ${name}@`)}`,
      );
      return 0;
    case 'password':
      await store.setPassword(requireName(name, sub), await passwordFromStdin(ctx));
      ctx.out(`Password of mailbox ${name} changed`);
      return 0;
    case 'remove':
      await store.remove(requireName(name, sub), config.mailbox.postmaster);
      ctx.out(`Mailbox ${name} removed with its messages`);
      return 0;
    default:
      throw new UsageError(
        `Unknown mailbox command "${sub ?? ''}"; use add, list, password or remove`,
      );
  }
}

async function passwordFromStdin(ctx: CommandContext): Promise<string> {
  if (!ctx.flags['password-stdin'])
    throw new UsageError(
      'Give the password on standard input with --password-stdin (never on the command line)',
    );
  return readPasswordFromStdin(ctx.stdin);
}

function requireName(name: string | undefined, command: string): string {
  if (!name) throw new UsageError(`mailbox ${command} needs a mailbox name`);
  return name;
}
