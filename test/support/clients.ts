/** Real clients nobody here wrote: Python's smtplib, curl, swaks; and a raw socket for what no client does */
import { execFile } from 'node:child_process';
import net from 'node:net';

export interface ProcessResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

export function run(
  command: string,
  args: string[],
  options: { input?: string | Buffer; timeoutMs?: number; env?: NodeJS.ProcessEnv } = {},
): Promise<ProcessResult> {
  return new Promise((resolve) => {
    const child = execFile(
      command,
      args,
      {
        timeout: options.timeoutMs ?? 30_000,
        maxBuffer: 64 * 1024 * 1024,
        env: options.env ?? process.env,
        encoding: 'buffer',
      },
      (err, stdout, stderr) => {
        const code = err
          ? typeof (err as NodeJS.ErrnoException & { code?: unknown }).code === 'number'
            ? (err as unknown as { code: number }).code
            : (child.exitCode ?? 1)
          : 0;
        resolve({ code, stdout: stdout.toString(), stderr: stderr.toString() });
      },
    );
    // A child that exits before reading its input must not crash the test with EPIPE
    child.stdin?.on('error', () => undefined);
    child.stdin?.end(options.input ?? '');
  });
}

/** Runs a Python snippet; `args` arrive as sys.argv[1:] */
export const python = (code: string, args: string[] = [], input?: string | Buffer) =>
  run('python3', ['-c', code, ...args], { input });

/** Sends one message with smtplib; prints the DATA reply ("code text") on stdout */
const POPLIB_LOGIN = `
import poplib, sys
p = poplib.POP3('127.0.0.1', int(sys.argv[1]), timeout=20)
try:
    p.user(sys.argv[2]); p.pass_(sys.argv[3]); print('ok'); p.quit()
except poplib.error_proto as e:
    print(e.args[0].decode())
`;

/** A POP3 login with Python's poplib: "ok", or the server's error line */
export async function poplibLogin(port: number, user: string, password: string): Promise<string> {
  return (await python(POPLIB_LOGIN, [String(port), user, password])).stdout.trim();
}

export const SMTPLIB_SEND = `
import smtplib, sys
port, sender, rcpts = int(sys.argv[1]), sys.argv[2], sys.argv[3].split(',')
data = sys.stdin.buffer.read()
s = smtplib.SMTP('127.0.0.1', port, timeout=20)
s.ehlo('printer.lan')
s.mail(sender)
for r in rcpts:
    code, text = s.rcpt(r)
    if code >= 400:
        print(code, text.decode()); sys.exit(3)
code, text = s.data(data)
print(code, text.decode())
s.quit()
`;

export async function smtplibSend(
  port: number,
  from: string,
  to: string[],
  data: string | Buffer,
): Promise<string> {
  const result = await python(SMTPLIB_SEND, [String(port), from, to.join(',')], data);
  if (result.code !== 0)
    throw new Error(`smtplib failed (${result.code}): ${result.stdout} ${result.stderr}`);
  return result.stdout.trim();
}

/** A socket conversation: send each chunk after the previous reply arrived; returns every reply */
export class RawSmtp {
  private buffer = '';
  private waiters: (() => void)[] = [];
  readonly socket: net.Socket;
  closed = false;

  private constructor(socket: net.Socket) {
    this.socket = socket;
    socket.on('data', (d: Buffer) => {
      this.buffer += d.toString('latin1');
      this.waiters.splice(0).forEach((w) => w());
    });
    socket.on('close', () => {
      this.closed = true;
      this.waiters.splice(0).forEach((w) => w());
    });
    socket.on('error', () => undefined);
  }

  static connect(
    port: number,
    options: { host?: string; localAddress?: string } = {},
  ): Promise<RawSmtp> {
    return new Promise((resolve, reject) => {
      const socket = net.connect(
        { port, host: options.host ?? '127.0.0.1', localAddress: options.localAddress },
        () => resolve(new RawSmtp(socket)),
      );
      socket.once('error', reject);
    });
  }

  /** Waits for one complete reply (the last line has "NNN "), returns it */
  reply(timeoutMs = 10_000): Promise<string> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () =>
          reject(
            new Error(`No SMTP reply in ${timeoutMs} ms; have: ${JSON.stringify(this.buffer)}`),
          ),
        timeoutMs,
      );
      const check = () => {
        const match = /^(?:\d{3}-[^\n]*\n)*\d{3}(?: [^\n]*)?\r?\n/.exec(this.buffer);
        if (match) {
          clearTimeout(timer);
          this.buffer = this.buffer.slice(match[0].length);
          resolve(match[0].trimEnd());
        } else if (this.closed) {
          clearTimeout(timer);
          reject(new Error(`Connection closed; have: ${JSON.stringify(this.buffer)}`));
        } else this.waiters.push(check);
      };
      check();
    });
  }

  async command(text: string | Buffer): Promise<string> {
    this.socket.write(text);
    return this.reply();
  }

  close(): void {
    this.socket.destroy();
  }

  /** One message the way a simple device sends it (HELO, no pipelining); resolves with the reply to the data, after QUIT */
  static async send(
    port: number,
    message: {
      helo: string;
      from: string;
      to: string;
      data: string | Buffer;
      localAddress?: string;
    },
  ): Promise<string> {
    const smtp = await RawSmtp.connect(port, { localAddress: message.localAddress });
    try {
      await smtp.reply();
      await smtp.command(`HELO ${message.helo}\r\n`);
      await smtp.command(`MAIL FROM:<${message.from}>\r\n`);
      await smtp.command(`RCPT TO:<${message.to}>\r\n`);
      await smtp.command('DATA\r\n');
      const reply = await smtp.command(message.data);
      await smtp.command('QUIT\r\n');
      return reply;
    } finally {
      smtp.close();
    }
  }
}
