/** argv -> a command. Exit codes: 0 ok, 1 failure, 2 bad usage or bad configuration */
import { parseArgs } from 'node:util';
import { adminCommand } from './cli/admin.js';
import { configCommand } from './cli/config.js';
import type { CommandContext } from './cli/context.js';
import { mailboxCommand } from './cli/mailbox.js';
import { queueCommand } from './cli/queue.js';
import { serveCommand } from './cli/serve.js';
import { RelayError, errorMessage } from './errors.js';
import { VERSION } from './version.js';

const HELP = `edge-relay ${VERSION}: a durable SMTP relay for printers, scanners and other LAN devices

Usage:
  edge-relay serve [--config FILE]
  edge-relay queue list [--json] [--config FILE]
  edge-relay queue show ID | retry ID|--all | hold ID | release ID | delete ID   [--config FILE]
  edge-relay mailbox add NAME --password-stdin [--config FILE]
  edge-relay mailbox password NAME --password-stdin [--config FILE]
  edge-relay mailbox list | remove NAME   [--config FILE]
  edge-relay admin password --password-stdin [--config FILE]
  edge-relay admin token create NAME [--scope metrics|read|admin] | list | revoke ID   [--config FILE]
  edge-relay config check | reload   [--config FILE]
  edge-relay --version | --help

Without --config: the file named by $EDGE_RELAY_CONFIG, else /etc/edge-relay/config.json
(the service's, when it exists), else the embedded defaults with ./data as the data folder.
Commands other than serve say on stderr which configuration and data folder they use.`;

const COMMANDS: Record<string, (ctx: CommandContext) => Promise<number>> = {
  serve: serveCommand,
  queue: queueCommand,
  mailbox: mailboxCommand,
  admin: adminCommand,
  config: configCommand,
};

export async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    strict: true,
    options: {
      config: { type: 'string', short: 'c' },
      json: { type: 'boolean' },
      all: { type: 'boolean' },
      'password-stdin': { type: 'boolean' },
      scope: { type: 'string' },
      version: { type: 'boolean', short: 'v' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.version) {
    console.log(VERSION);
    return 0;
  }
  const [name, ...args] = positionals;
  if (values.help || !name) {
    console.log(HELP);
    return values.help ? 0 : 2;
  }
  const command = COMMANDS[name];
  if (!command) {
    console.error(`Unknown command "${name}"\n\n${HELP}`);
    return 2;
  }
  return command({
    args,
    configFile: values.config,
    flags: values,
    out: (text) => console.log(text),
    note: (text) => console.error(text),
    stdin: process.stdin,
  });
}

function exitCodeFor(err: unknown): number {
  if (err instanceof RelayError && (err.kind === 'config' || err.kind === 'usage')) return 2;
  if (err instanceof TypeError && 'code' in err && String(err.code).startsWith('ERR_PARSE_ARGS'))
    return 2;
  return 1;
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    console.error(`edge-relay: ${errorMessage(err)}`);
    process.exitCode = exitCodeFor(err);
  },
);
