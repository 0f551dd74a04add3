/**
 * The POP3 command table (RFC 1939, 2449, 2595, 5034): each command says once
 * in which states it is valid; the session dispatches from here and checks
 * nothing itself. Handlers parse arguments and reply; the session owns I/O,
 * login, TLS and the state changes that need them.
 */
import type { Release } from '../mailbox/locks.js';
import type { StoredMessage } from './backend.js';
import type { Maildrop } from './maildrop.js';
import { decodePlain } from './sasl.js';
import { printable } from './text.js';

export type SessionState =
  | { name: 'authorization'; user: string | null }
  | { name: 'transaction'; maildrop: Maildrop; release: Release }
  /** After QUIT in TRANSACTION: deletions are being committed; no command is valid */
  | { name: 'update' };

export type StateName = SessionState['name'];
type StateOf<S extends StateName> = Extract<SessionState, { name: S }>;

/** What a command can do with its session */
export interface CommandContext {
  /** The connection is encrypted (STLS done, or the implicit-TLS port) */
  readonly secure: boolean;
  /** USER, PASS and AUTH are refused on clear text when the admin requires TLS */
  readonly loginAllowed: boolean;
  ok(text: string): Promise<void>;
  err(text: string): Promise<void>;
  /** "+OK first", the lines, "." */
  multiline(first: string, lines: readonly string[]): Promise<void>;
  /** RETR (whole) or TOP (header + bodyLines) */
  send(mailbox: string, message: StoredMessage, bodyLines?: number): Promise<void>;
  /** Sends a "+ " continuation and returns the client's answer (SASL) */
  prompt(text: string): Promise<string | null>;
  login(user: string, password: string): Promise<void>;
  startTls(): Promise<void>;
  quit(): Promise<void>;
}

export interface Command {
  readonly states: readonly StateName[];
  /**
   * Fetches or deletes mail. Only these (and logging in) keep a session from
   * going idle: a client that sends NOOP or STAT for ever still gets closed,
   * and its mailbox unlocked
   */
  readonly progress: boolean;
  /** Runs the command; null (and nothing done) when it is not valid in `state` */
  run(ctx: CommandContext, state: SessionState, args: string): Promise<void> | null;
}

function command<S extends StateName>(
  states: readonly S[],
  handler: (ctx: CommandContext, state: StateOf<S>, args: string) => Promise<void>,
  { progress = false } = {},
): Command {
  const allowed = (state: SessionState): state is StateOf<S> =>
    (states as readonly StateName[]).includes(state.name);
  return {
    states,
    progress,
    run: (ctx, state, args) => (allowed(state) ? handler(ctx, state, args) : null),
  };
}

const PROGRESS = { progress: true } as const;

const LOGIN_NEEDS_TLS =
  '[SYS/PERM] Log in only over an encrypted connection: send STLS first, or use the POP3S port';
const TOP_LINES = /^[0-9]{1,9}$/;

const summary = (maildrop: Maildrop) => {
  const { count, bytes } = maildrop.stat();
  return `${count} messages (${bytes} octets)`;
};

/** RFC 2449 capabilities; USER, SASL and STLS only where they can be used */
export function capabilities(
  ctx: Pick<CommandContext, 'secure' | 'loginAllowed'>,
  state: SessionState,
): string[] {
  const before = state.name === 'authorization';
  return [
    'TOP',
    'UIDL',
    'RESP-CODES',
    'AUTH-RESP-CODE',
    ...(before && ctx.loginAllowed ? ['USER', 'SASL PLAIN'] : []),
    ...(before && !ctx.secure ? ['STLS'] : []),
    'IMPLEMENTATION edge-relay',
  ];
}

async function authPlain(ctx: CommandContext, initial: string | undefined): Promise<void> {
  const response = initial ?? (await ctx.prompt(''));
  if (response === null) return;
  if (response === '*') return ctx.err('Authentication cancelled');
  const credentials = decodePlain(response === '=' ? '' : response);
  if (!credentials) return ctx.err('[AUTH] Malformed SASL PLAIN response');
  return ctx.login(credentials.user, credentials.password);
}

const maildropCommands: [string, Command][] = [
  [
    'STAT',
    command(['transaction'], (ctx, { maildrop }) => {
      const { count, bytes } = maildrop.stat();
      return ctx.ok(`${count} ${bytes}`);
    }),
  ],
  [
    'LIST',
    command(['transaction'], async (ctx, { maildrop }, args) => {
      if (!args.trim())
        return ctx.multiline(
          summary(maildrop),
          maildrop.visible().map(({ number, message }) => `${number} ${message.size}`),
        );
      const found = maildrop.lookup(args);
      return found.ok ? ctx.ok(`${found.number} ${found.message.size}`) : ctx.err(found.error);
    }),
  ],
  [
    'UIDL',
    command(['transaction'], async (ctx, { maildrop }, args) => {
      if (!args.trim())
        return ctx.multiline(
          'Unique ids follow',
          maildrop.visible().map(({ number, message }) => `${number} ${message.uid}`),
        );
      const found = maildrop.lookup(args);
      return found.ok ? ctx.ok(`${found.number} ${found.message.uid}`) : ctx.err(found.error);
    }),
  ],
  [
    'RETR',
    command(
      ['transaction'],
      async (ctx, { maildrop }, args) => {
        const found = maildrop.lookup(args);
        return found.ok ? ctx.send(maildrop.mailbox, found.message) : ctx.err(found.error);
      },
      PROGRESS,
    ),
  ],
  [
    'TOP',
    command(
      ['transaction'],
      async (ctx, { maildrop }, args) => {
        const [number, lines = '', ...rest] = args.trim().split(/ +/);
        if (!TOP_LINES.test(lines) || rest.length)
          return ctx.err(`Use TOP <message> <lines>, not "TOP ${printable(args)}"`);
        const found = maildrop.lookup(number);
        return found.ok
          ? ctx.send(maildrop.mailbox, found.message, Number(lines))
          : ctx.err(found.error);
      },
      PROGRESS,
    ),
  ],
  [
    'DELE',
    command(
      ['transaction'],
      async (ctx, { maildrop }, args) => {
        const found = maildrop.lookup(args);
        if (!found.ok) return ctx.err(found.error);
        maildrop.markDeleted(found.number);
        return ctx.ok(`Message ${found.number} marked for deletion at QUIT`);
      },
      PROGRESS,
    ),
  ],
  [
    'RSET',
    command(['transaction'], async (ctx, { maildrop }) => {
      maildrop.reset();
      return ctx.ok(`Deletion marks removed; ${summary(maildrop)}`);
    }),
  ],
  ['NOOP', command(['transaction'], (ctx) => ctx.ok('Still here'))],
];

const loginCommands: [string, Command][] = [
  [
    'USER',
    command(['authorization'], async (ctx, state, args) => {
      if (!ctx.loginAllowed) return ctx.err(LOGIN_NEEDS_TLS);
      const user = args.trim();
      if (!user) return ctx.err('Use USER <mailbox name>');
      state.user = user;
      return ctx.ok(`Send the password of ${printable(user, 64)}`);
    }),
  ],
  [
    'PASS',
    command(['authorization'], async (ctx, state, args) => {
      if (!ctx.loginAllowed) return ctx.err(LOGIN_NEEDS_TLS);
      const user = state.user;
      state.user = null;
      if (user === null) return ctx.err('Send USER first');
      return ctx.login(user, args);
    }),
  ],
  [
    'AUTH',
    command(['authorization'], async (ctx, _state, args) => {
      const [mechanism = '', initial, ...rest] = args.trim().split(/ +/);
      // A bare AUTH lists the mechanisms (what Outlook and others probe with)
      if (!mechanism) return ctx.multiline('Mechanisms follow', ctx.loginAllowed ? ['PLAIN'] : []);
      if (!ctx.loginAllowed) return ctx.err(LOGIN_NEEDS_TLS);
      if (mechanism.toUpperCase() !== 'PLAIN' || rest.length)
        return ctx.err(`Unsupported SASL mechanism "${printable(mechanism, 20)}"; use PLAIN`);
      return authPlain(ctx, initial);
    }),
  ],
  [
    'STLS',
    command(['authorization'], async (ctx) => {
      if (ctx.secure) return ctx.err('The connection is already encrypted');
      return ctx.startTls();
    }),
  ],
];

export const COMMANDS: ReadonlyMap<string, Command> = new Map<string, Command>([
  ...loginCommands,
  ...maildropCommands,
  [
    'CAPA',
    command(['authorization', 'transaction'], (ctx, state) =>
      ctx.multiline('Capability list follows', capabilities(ctx, state)),
    ),
  ],
  ['QUIT', command(['authorization', 'transaction'], (ctx) => ctx.quit())],
]);
