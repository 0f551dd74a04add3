/** A raw POP3 conversation over a real socket, for what no stock client does (garbage, pipelining, STLS by hand) */
import net from 'node:net';
import tls from 'node:tls';

export class RawPop3 {
  private buffer = Buffer.alloc(0);
  private waiters: (() => void)[] = [];
  closed = false;

  private constructor(private socket: net.Socket) {
    this.listen(socket);
  }

  /** `localAddress` (127.0.0.2 ...) stands for another host on the LAN (plain connections) */
  static connect(
    port: number,
    options: { host?: string; tls?: boolean; localAddress?: string } = {},
  ): Promise<RawPop3> {
    return new Promise((resolve, reject) => {
      const host = options.host ?? '127.0.0.1';
      const { localAddress } = options;
      const socket = options.tls
        ? tls.connect({ port, host, rejectUnauthorized: false }, () => resolve(new RawPop3(socket)))
        : net.connect({ port, host, localAddress }, () => resolve(new RawPop3(socket)));
      socket.once('error', reject);
    });
  }

  private listen(socket: net.Socket): void {
    socket.on('data', (d: Buffer) => {
      this.buffer = Buffer.concat([this.buffer, d]);
      this.waiters.splice(0).forEach((w) => w());
    });
    socket.on('close', () => {
      this.closed = true;
      this.waiters.splice(0).forEach((w) => w());
    });
    socket.on('error', () => undefined);
  }

  /** Waits until `find` locates a complete reply in the buffer; returns it and consumes it */
  private take(find: (buffer: Buffer) => number, timeoutMs: number): Promise<string> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () =>
          reject(
            new Error(
              `No POP3 reply in ${timeoutMs} ms; have: ${JSON.stringify(this.buffer.toString('latin1'))}`,
            ),
          ),
        timeoutMs,
      );
      const check = () => {
        const end = find(this.buffer);
        if (end >= 0) {
          clearTimeout(timer);
          const text = this.buffer.subarray(0, end).toString('latin1');
          this.buffer = this.buffer.subarray(end);
          resolve(text);
        } else if (this.closed) {
          clearTimeout(timer);
          reject(
            new Error(`Connection closed; have: ${JSON.stringify(this.buffer.toString('latin1'))}`),
          );
        } else this.waiters.push(check);
      };
      check();
    });
  }

  /** One status line, without its CRLF */
  line(timeoutMs = 10_000): Promise<string> {
    return this.take((b) => {
      const i = b.indexOf('\r\n');
      return i < 0 ? -1 : i + 2;
    }, timeoutMs).then((text) => text.slice(0, -2));
  }

  /** A multi-line reply up to and including the "." line, exactly as sent */
  multi(timeoutMs = 10_000): Promise<string> {
    return this.take((b) => {
      if (b.subarray(0, 4).toString() === '-ERR')
        return b.indexOf('\r\n') < 0 ? -1 : b.indexOf('\r\n') + 2;
      const i = b.indexOf('\r\n.\r\n');
      return i < 0 ? -1 : i + 5;
    }, timeoutMs);
  }

  write(data: string | Buffer): void {
    this.socket.write(data);
  }

  async command(text: string, timeoutMs?: number): Promise<string> {
    this.write(`${text}\r\n`);
    return this.line(timeoutMs);
  }

  async multiCommand(text: string): Promise<string> {
    this.write(`${text}\r\n`);
    return this.multi();
  }

  /** After "+OK" to STLS: the handshake, trusting anything (the cert is self-signed) */
  async upgrade(): Promise<tls.TLSSocket> {
    const plain = this.socket;
    plain.removeAllListeners('data');
    plain.removeAllListeners('close');
    const secure = await new Promise<tls.TLSSocket>((resolve, reject) => {
      const s = tls.connect(
        { socket: plain, rejectUnauthorized: false, servername: 'localhost' },
        () => resolve(s),
      );
      s.once('error', reject);
    });
    this.socket = secure;
    this.buffer = Buffer.alloc(0);
    this.listen(secure);
    return secure;
  }

  /** Resolves when the server has closed the connection */
  waitClosed(timeoutMs = 10_000): Promise<void> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`Connection still open after ${timeoutMs} ms`)),
        timeoutMs,
      );
      const check = () => {
        if (this.closed) {
          clearTimeout(timer);
          resolve();
        } else this.waiters.push(check);
      };
      check();
    });
  }

  close(): void {
    this.socket.destroy();
  }
}
