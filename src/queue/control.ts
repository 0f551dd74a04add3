/**
 * The CLI's way into a running server's queue. Only the server writes the
 * spool's journal, so `edge-relay queue ...` beside a running server sends
 * its request over a Unix socket in the spool folder (owner-only, like the
 * data dir) and the server carries it out with the same QueueCommands the web
 * page uses: one JSON line each way, one request per connection.
 */
import { promises as fs } from 'node:fs';
import net from 'node:net';
import { RelayError, UsageError, errnoCode, errorMessage, type ErrorKind } from '../errors.js';
import type { Logger } from '../log.js';
import type { QueueId } from '../spool/ids.js';
import type { QueueListItem } from '../spool/records.js';
import type { QueueAction } from './commands.js';

/** What a person can ask of the queue (QueueCommands in-process, or the server through the socket) */
export interface QueueOps {
  list(): Promise<QueueListItem[]>;
  show(id: QueueId): Promise<{ item: QueueListItem; headers: string }>;
  apply(action: QueueAction, id: QueueId): Promise<void>;
  retryAll(): Promise<number>;
}

type Request =
  | { op: 'list' }
  | { op: 'show'; id: QueueId }
  | { op: 'apply'; action: QueueAction; id: QueueId }
  | { op: 'retryAll' };
type Reply = { ok: true; result: unknown } | { ok: false; error: string; kind: ErrorKind };

const MAX_REQUEST_BYTES = 4096;
const REPLY_TIMEOUT_MS = 30_000;

function run(ops: QueueOps, request: Request): Promise<unknown> {
  switch (request.op) {
    case 'list':
      return ops.list();
    case 'show':
      return ops.show(request.id);
    case 'apply':
      return ops.apply(request.action, request.id);
    case 'retryAll':
      return ops.retryAll();
  }
}

/** Listens on `socketPath` (a stale socket from a crash is replaced) */
export async function serveQueueControl(
  socketPath: string,
  ops: QueueOps,
  log: Logger,
): Promise<{ close(): Promise<void> }> {
  await fs.rm(socketPath, { force: true });
  const server = net.createServer((socket) => {
    let text = '';
    socket.setEncoding('utf8');
    socket.on('error', () => undefined);
    socket.on('data', (chunk: string) => {
      text += chunk;
      if (text.length > MAX_REQUEST_BYTES) return void socket.destroy();
      const end = text.indexOf('\n');
      if (end < 0) return;
      socket.removeAllListeners('data');
      void answer(ops, text.slice(0, end)).then((reply) =>
        socket.end(`${JSON.stringify(reply)}\n`),
      );
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ path: socketPath }, () => (server.off('error', reject), resolve()));
  });
  await fs.chmod(socketPath, 0o600);
  return {
    close: async () => {
      await new Promise((resolve) => server.close(resolve));
      await fs.rm(socketPath, { force: true });
    },
  };

  async function answer(ops: QueueOps, line: string): Promise<Reply> {
    try {
      return { ok: true, result: await run(ops, JSON.parse(line) as Request) };
    } catch (err) {
      if (!(err instanceof RelayError))
        log.warn({ err: errorMessage(err) }, 'A queue request from the command line failed');
      return {
        ok: false,
        error: errorMessage(err),
        kind: err instanceof RelayError ? err.kind : 'temporary',
      };
    }
  }
}

/** The running server's queue, or undefined when no server listens on `socketPath` */
export async function connectQueueControl(socketPath: string): Promise<QueueOps | undefined> {
  const reachable = await new Promise<boolean>((resolve, reject) => {
    const socket = net.connect({ path: socketPath }, () => (socket.destroy(), resolve(true)));
    socket.on('error', (err) => {
      const code = errnoCode(err);
      if (code === 'ENOENT' || code === 'ECONNREFUSED') resolve(false);
      else reject(err);
    });
  });
  if (!reachable) return undefined;
  const ask = <T>(request: Request) => requestOnce(socketPath, request) as Promise<T>;
  return {
    list: () => ask<QueueListItem[]>({ op: 'list' }),
    show: (id) => ask<{ item: QueueListItem; headers: string }>({ op: 'show', id }),
    apply: (action, id) => ask<void>({ op: 'apply', action, id }),
    retryAll: () => ask<number>({ op: 'retryAll' }),
  };
}

function requestOnce(socketPath: string, request: Request): Promise<unknown> {
  return new Promise((resolve, reject) => {
    let text = '';
    const socket = net.connect({ path: socketPath }, () =>
      socket.write(`${JSON.stringify(request)}\n`),
    );
    socket.setEncoding('utf8');
    socket.setTimeout(REPLY_TIMEOUT_MS, () =>
      socket.destroy(new Error('The running server did not answer in time')),
    );
    socket.on('data', (chunk: string) => (text += chunk));
    socket.on('error', reject);
    socket.on('end', () => {
      let reply: Reply;
      try {
        reply = JSON.parse(text) as Reply;
      } catch {
        return reject(new RelayError('The running server gave no answer', { kind: 'temporary' }));
      }
      if (reply.ok) resolve(reply.result);
      else
        reject(
          reply.kind === 'usage'
            ? new UsageError(reply.error)
            : new RelayError(reply.error, { kind: reply.kind }),
        );
    });
  });
}
