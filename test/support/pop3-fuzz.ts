/**
 * A seeded, grammar-based POP3 session fuzzer and a strict reader of what
 * the server answers. Sessions mix real logins and commands with what broken
 * clients and scanners send: random bytes, NUL bytes, huge lines, commands
 * out of order, repeated USER/PASS, broken or absurd AUTH PLAIN, garbage
 * after STLS, huge numbers, pipelined junk, and hang-ups mid-RETR or
 * mid-AUTH. Sessions that may delete (they end with QUIT) and sessions that
 * must not (they hang up) use different mailboxes, so a test can tell
 * legitimate deletions from lost mail.
 */
import { Rng, base64Junk } from './fuzz.js';

export interface Pop3Account {
  name: string;
  password: string;
}

export interface Pop3Targets {
  /** Mailboxes of sessions that end with QUIT: they may delete */
  quitting: readonly Pop3Account[];
  /** Mailboxes of sessions that hang up without QUIT: nothing there may ever go */
  dropping: readonly Pop3Account[];
  /** Held open by another connection for the whole run: every login gets [IN-USE] */
  locked: Pop3Account;
  /**
   * Gets every wrong password. Failures count per mailbox too, so thousands of
   * them against the mailboxes above would have most of their logins refused
   * unchecked, and the fuzzing would hardly reach the commands after login
   */
  decoy: Pop3Account;
}

export type Ending = { kind: 'quit' } | { kind: 'drop'; afterMs: number };

export interface Pop3Plan {
  chunks: Buffer[];
  /** The only mailbox this session can log in to */
  mailbox: string;
  ending: Ending;
}

const CRLF = '\r\n';
const NUMBERS = [
  '1',
  '2',
  '3',
  '4',
  '0',
  '-1',
  '99999999999999999999',
  '4294967297',
  'x',
  '',
  ' 1',
  '1 2',
  '+1',
  '01',
  '1e3',
  '\uff11',
  '1\u0000',
];
const LINE_COUNTS = ['0', '1', '5', '-1', 'x', '999999999', '99999999999', '', '1 1'];
/** Verbs for junk lines; never QUIT (a dropping session must not commit), PASS (no extra failed logins) or STLS (it ends the session) */
const JUNK_VERBS = [
  'STAT',
  'LIST',
  'UIDL',
  'RETR',
  'TOP',
  'DELE',
  'RSET',
  'NOOP',
  'CAPA',
  'USER',
  'AUTH',
  'APOP',
  'LAST',
  'XTND',
  'HELO',
  'MAIL FROM:',
  '',
];
const WEIRD_USERS = [
  '',
  ' ',
  'a\rb',
  'nul\u0000user',
  '../../etc/passwd',
  'üser',
  'x'.repeat(300),
  '<script>alert(1)</script>',
  'ROOT',
  '%s%n',
];

const plainResponse = (user: string, password: string, authorize = '') =>
  Buffer.from(`${authorize}\0${user}\0${password}`).toString('base64');

function goodLogin(rng: Rng, account: Pop3Account): string {
  const { name, password } = account;
  switch (rng.int(4)) {
    case 0:
      return `AUTH PLAIN ${plainResponse(name, password)}${CRLF}`;
    case 1:
      return `AUTH plain${CRLF}${plainResponse(name, password)}${CRLF}`;
    case 2:
      // Repeated USER: the last one counts
      return `USER nobody${CRLF}USER ${name}${CRLF}PASS ${password}${CRLF}`;
    default:
      return `${rng.pick(['USER', 'user'])} ${name.toUpperCase()}${CRLF}PASS ${password}${CRLF}`;
  }
}

/** One failed login: each costs the source address a growing delay, so a session gets at most one */
function badLogin(rng: Rng, account: Pop3Account, decoy: Pop3Account): string {
  switch (rng.int(3)) {
    case 0:
      return `USER ${decoy.name}${CRLF}PASS ${rng.pick(['wrong-password', '', ' ', account.password, decoy.password + ' ', 'x'.repeat(3000)])}${CRLF}`;
    case 1:
      return `USER ${rng.pick(WEIRD_USERS)}${CRLF}PASS ${account.password}${CRLF}`;
    default:
      // Someone else's mailbox through the SASL authorization identity
      return `AUTH PLAIN ${plainResponse(account.name, account.password, 'postmaster')}${CRLF}`;
  }
}

function saslJunk(rng: Rng): string {
  switch (rng.int(5)) {
    case 0:
      return `AUTH PLAIN ${base64Junk(rng)}${CRLF}`;
    case 1:
      return `AUTH PLAIN${CRLF}${base64Junk(rng)}${CRLF}`;
    case 2:
      // Absurd initial responses: valid base64 of nonsense, too long for a line, or a second argument
      return `AUTH PLAIN ${rng.pick([Buffer.from(rng.bytes(2000)).toString('base64'), 'A'.repeat(10_000), 'AAAA AAAA', '='])}${CRLF}`;
    case 3:
      return `AUTH ${rng.pick(['LOGIN', 'CRAM-MD5', 'XOAUTH2 x', 'GSSAPI', 'PLAIN PLAIN PLAIN', '\u0000'])}${CRLF}`;
    default:
      return `AUTH${CRLF}`;
  }
}

function transaction(rng: Rng): string {
  const n = () => rng.pick(NUMBERS);
  return rng.pick([
    () => `STAT${CRLF}`,
    () => `LIST${rng.chance(0.5) ? ` ${n()}` : ''}${CRLF}`,
    () => `UIDL${rng.chance(0.5) ? ` ${n()}` : ''}${CRLF}`,
    () => `RETR ${n()}${CRLF}`,
    () => `TOP ${n()} ${rng.pick(LINE_COUNTS)}${CRLF}`,
    () => `DELE ${n()}${CRLF}`,
    () => `RSET${CRLF}`,
    () => `NOOP${CRLF}`,
    () => `CAPA${CRLF}`,
  ])();
}

function junk(rng: Rng): string | Buffer {
  switch (rng.int(5)) {
    case 0:
      return Buffer.concat([rng.bytes(1 + rng.int(2000)), Buffer.from(CRLF)]);
    case 1:
      return `${rng.pick(JUNK_VERBS)}\u0000${'\u0000'.repeat(rng.int(50))}${rng.pick(JUNK_VERBS)}${CRLF}`;
    case 2:
      return `${rng.pick(JUNK_VERBS)} ${'A'.repeat(1 + rng.int(40_000))}${CRLF}`;
    case 3:
      // Pipelined junk: many short lines at once
      return (
        Array.from(
          { length: 1 + rng.int(60) },
          () =>
            `${rng.pick(JUNK_VERBS)} ${rng
              .bytes(rng.int(30))
              .toString('latin1')
              .replace(/[\r\n]/g, '')}`,
        ).join(CRLF) + CRLF
      );
    default:
      return `PASS ${rng.pick(['secret', '', 'a b c'])}${CRLF}`;
  }
}

/** STLS then no TLS at all: a TLS record header followed by noise, or plain text */
const stlsGarbage = (rng: Rng): Buffer =>
  Buffer.concat([
    Buffer.from(`STLS${CRLF}`),
    rng.chance(0.5)
      ? Buffer.from([0x16, 0x03, 0x01, 0x00, 0xa5, 0x01])
      : Buffer.from(`USER x${CRLF}`),
    rng.bytes(rng.int(200)),
    Buffer.from(CRLF),
  ]);

/** What a hanging-up session does last: a fetch that is still streaming, or an AUTH waiting for its response */
function lastWords(rng: Rng): string {
  return rng.pick([
    `RETR ${1 + rng.int(3)}${CRLF}`,
    `TOP ${1 + rng.int(3)} 1000${CRLF}`,
    `AUTH PLAIN${CRLF}`,
    `LIST${CRLF}UIDL${CRLF}RETR 3${CRLF}`,
    'RETR 3',
  ]);
}

export function pop3Session(
  rng: Rng,
  targets: Pop3Targets,
  options: { hugeLine: number },
): Pop3Plan {
  const ending: Ending = rng.chance(0.4)
    ? { kind: 'drop', afterMs: rng.int(40) }
    : { kind: 'quit' };
  const account =
    ending.kind === 'drop'
      ? rng.pick(targets.dropping)
      : rng.chance(0.1)
        ? targets.locked
        : rng.pick(targets.quitting);
  const steps: (string | Buffer)[] = [];
  if (rng.chance(0.5)) steps.push(goodLogin(rng, account));
  let badLogins = 0;
  const count = 1 + rng.int(10);
  for (let i = 0; i < count; i++) {
    const kind = rng.int(20);
    if (kind < 7) steps.push(transaction(rng));
    else if (kind < 9) steps.push(goodLogin(rng, account));
    else if (kind === 9 && badLogins++ === 0) steps.push(badLogin(rng, account, targets.decoy));
    else if (kind < 13) steps.push(saslJunk(rng));
    else if (kind === 13 && rng.chance(0.1)) steps.push(stlsGarbage(rng));
    else steps.push(junk(rng));
  }
  if (rng.chance(options.hugeLine)) steps.push(Buffer.alloc(2 * 1024 * 1024, 'Z'));
  // Hang up mid-command; or cancel any AUTH still waiting for a response, then say goodbye
  steps.push(ending.kind === 'drop' ? lastWords(rng) : `${CRLF}*${CRLF}QUIT${CRLF}`);
  return {
    chunks: steps.map((s) => (typeof s === 'string' ? Buffer.from(s, 'latin1') : s)),
    mailbox: account.name,
    ending,
  };
}

/** What a session's replies say, and what was wrong with them */
export interface Pop3Reading {
  lines: number;
  problems: string[];
  /** Sum of "(N messages deleted)" at QUIT */
  deleted: number;
  inUse: number;
  logins: number;
  /** Every reply was complete: no cut-off line, no unterminated multi-line response */
  complete: boolean;
}

/** "+OK"/"-ERR" with printable text, or a SASL "+ " continuation; at most 512 octets with CRLF (RFC 2449 §4) */
const STATUS = /^(?:\+OK|-ERR)(?: [\x20-\x7e]*)?$|^\+ [\x20-\x7e]*$/;
/** The first lines of our multi-line responses: RETR (with its size), TOP, CAPA, AUTH, UIDL, LIST */
const MULTI =
  /^\+OK (?:(\d+) octets|Header and \d+ body lines follow|Capability list follows|Mechanisms follow|Unique ids follow|\d+ messages \(\d+ octets\))$/;
const PRINTABLE = /^[\x20-\x7e]*$/;
const DOT = 0x2e;

const show = (text: string) =>
  JSON.stringify(text.length > 120 ? `${text.slice(0, 120)}... (${text.length} chars)` : text);

/** Reads one multi-line body from `pos`; null when it is cut off */
function readBody(
  raw: Buffer,
  pos: number,
  problems: string[],
  printableOnly: boolean,
): { pos: number; octets: number } | null {
  let octets = 0;
  for (;;) {
    const end = raw.indexOf(CRLF, pos);
    if (end < 0) return null;
    let line = raw.subarray(pos, end);
    pos = end + 2;
    if (line.length === 1 && line[0] === DOT) return { pos, octets };
    if (line[0] === DOT) {
      if (line[1] !== DOT) problems.push(`line not dot-stuffed: ${show(line.toString('latin1'))}`);
      line = line.subarray(1);
    }
    if (printableOnly && !PRINTABLE.test(line.toString('latin1')))
      problems.push(`unprintable list line: ${show(line.toString('latin1'))}`);
    octets += line.length + 2;
  }
}

export function readPop3Replies(raw: Buffer): Pop3Reading {
  const reading: Pop3Reading = {
    lines: 0,
    problems: [],
    deleted: 0,
    inUse: 0,
    logins: 0,
    complete: false,
  };
  let pos = 0;
  while (pos < raw.length) {
    const end = raw.indexOf(CRLF, pos);
    if (end < 0) return reading;
    const line = raw.toString('latin1', pos, end);
    pos = end + 2;
    reading.lines++;
    if (line.length > 510 || !STATUS.test(line)) {
      reading.problems.push(`malformed status line: ${show(line)}`);
      continue;
    }
    // From here on the bytes are TLS (or nothing): not ours to read as text
    if (line === '+OK Begin TLS negotiation') return { ...reading, complete: true };
    if (line.startsWith('-ERR [IN-USE]')) reading.inUse++;
    if (/^\+OK Mailbox \S+ has \d+ messages/.test(line)) reading.logins++;
    reading.deleted += Number(
      /^\+OK edge-relay signing off \((\d+) messages deleted\)$/.exec(line)?.[1] ?? 0,
    );
    const multi = MULTI.exec(line);
    if (!multi) continue;
    const size = multi[1];
    const body = readBody(
      raw,
      pos,
      reading.problems,
      !line.startsWith('+OK Header') && size === undefined,
    );
    if (!body) return reading;
    if (size !== undefined && body.octets !== Number(size))
      reading.problems.push(`RETR announced ${size} octets and sent ${body.octets}`);
    pos = body.pos;
  }
  return { ...reading, complete: true };
}
