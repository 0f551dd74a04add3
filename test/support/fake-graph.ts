/**
 * A local stand-in for Microsoft's token endpoint and Microsoft Graph, for
 * tests: HTTPS (certificate from the test CA) on 127.0.0.1, port 0. It
 * issues app-only tokens for one client, takes sendMail with a base64 MIME
 * body, drafts made from MIME, attachment upload sessions and the draft's
 * send, and records every request and every message sent. Modes play the
 * tenant's troubles: throttling (429 with Retry-After), consent revoked
 * (403 ErrorAccessDenied), an expired client secret (AADSTS7000222).
 */
import { randomBytes } from 'node:crypto';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { makeCerts } from './certs.js';

export const GRAPH_SCOPE = 'https://graph.microsoft.com/.default';
/** Graph refuses a request body over 4 MB */
export const GRAPH_REQUEST_LIMIT = 4 * 1024 * 1024;
const UPLOAD_RANGE_UNIT = 320 * 1024;

export type GraphMode =
  | { kind: 'ok' }
  | { kind: 'throttle'; times: number; retryAfterS: number }
  | { kind: 'revoked' }
  | { kind: 'expired-secret' };

export interface GraphRequestRecord {
  method: string;
  path: string;
  status: number;
  at: number;
  bytes: number;
}

export interface SentMessage {
  mailbox: string;
  /** The MIME Graph got (decoded from base64) */
  mime: Buffer;
  via: 'sendMail' | 'draft';
  /** Attachments added by upload session, reassembled from their chunks */
  attachments: { name: string; contentType: string; bytes: Buffer; chunkSizes: number[] }[];
}

export interface FakeGraph {
  tokenUrl: string;
  baseUrl: string;
  tenant: string;
  clientId: string;
  clientSecret: string;
  requests: GraphRequestRecord[];
  sent: SentMessage[];
  /** Form grant types and scopes asked for at the token endpoint */
  tokenScopes: string[];
  setMode(mode: GraphMode): void;
  /** The application permissions the next tokens carry */
  setRoles(roles: string[]): void;
  secrets(): string[];
  close(): Promise<void>;
}

interface Draft {
  mailbox: string;
  mime: Buffer;
  attachments: SentMessage['attachments'];
}

interface Upload {
  draft: Draft;
  name: string;
  contentType: string;
  size: number;
  chunks: Buffer[];
}

type Reply = [number, Record<string, unknown>, Record<string, string>?];

const id = (prefix: string) => `${prefix}-${randomBytes(12).toString('base64url')}`;
const graphError = (status: number, code: string, message: string): Reply => [
  status,
  { error: { code, message } },
];

export async function startFakeGraph(): Promise<FakeGraph> {
  const certs = makeCerts();
  const tenant = 'contoso.test';
  const clientId = 'graph-test-client';
  const clientSecret = id('graph-secret');
  const tokens = new Set<string>();
  const requests: GraphRequestRecord[] = [];
  const sent: SentMessage[] = [];
  const tokenScopes: string[] = [];
  const drafts = new Map<string, Draft>();
  const uploads = new Map<string, Upload>();
  let mode: GraphMode = { kind: 'ok' };
  let roles = ['Mail.Send', 'Mail.ReadWrite'];
  let url = '';

  function token(form: URLSearchParams): Reply {
    tokenScopes.push(form.get('scope') ?? '');
    if (mode.kind === 'expired-secret')
      return [
        401,
        {
          error: 'invalid_client',
          error_description: `AADSTS7000222: The provided client secret keys for app '${clientId}' are expired. Visit the Azure portal to create new keys for your app.`,
        },
      ];
    if (
      form.get('grant_type') !== 'client_credentials' ||
      form.get('client_id') !== clientId ||
      form.get('client_secret') !== clientSecret
    )
      return [
        401,
        {
          error: 'invalid_client',
          error_description: 'AADSTS7000215: Invalid client secret provided.',
        },
      ];
    if (form.get('scope') !== GRAPH_SCOPE)
      return [
        400,
        {
          error: 'invalid_scope',
          error_description: 'AADSTS70011: The provided value for scope is not valid.',
        },
      ];
    // Shaped like Microsoft's: a JWT whose roles claim lists the application permissions granted
    const claims = {
      aud: 'https://graph.microsoft.com',
      tid: tenant,
      appid: clientId,
      roles,
      jti: id('jti'),
    };
    const accessToken =
      ['{"typ":"JWT","alg":"none"}', JSON.stringify(claims)]
        .map((part) => Buffer.from(part).toString('base64url'))
        .join('.') + '.unsigned';
    tokens.add(accessToken);
    return [200, { token_type: 'Bearer', access_token: accessToken, expires_in: 3600 }];
  }

  const mimeOf = (body: Buffer, type: string | undefined): Buffer | undefined =>
    type?.startsWith('text/plain') ? Buffer.from(body.toString('latin1'), 'base64') : undefined;

  /** Throttling and revoked consent answer every mailbox request alike */
  function trouble(): Reply | undefined {
    if (mode.kind === 'throttle' && mode.times > 0) {
      mode.times--;
      return [
        429,
        {
          error: {
            code: 'ApplicationThrottled',
            message: 'Application is over its MailboxConcurrency limit.',
          },
        },
        { 'retry-after': String(mode.retryAfterS) },
      ];
    }
    if (mode.kind === 'revoked')
      return graphError(
        403,
        'ErrorAccessDenied',
        'Access is denied. Check credentials and try again.',
      );
    return undefined;
  }

  function mailboxRequest(
    method: string,
    mailbox: string,
    rest: string,
    body: Buffer,
    type: string | undefined,
  ): Reply {
    const problem = trouble();
    if (problem) return problem;
    if (method === 'GET' && rest === '')
      return [200, { id: id('user'), mail: mailbox, userPrincipalName: mailbox }];
    if (method === 'POST' && rest === '/sendMail') {
      const mime = mimeOf(body, type);
      if (!mime)
        return graphError(
          400,
          'ErrorMimeContentInvalidBase64String',
          'Invalid base64 string for MIME content.',
        );
      sent.push({ mailbox, mime, via: 'sendMail', attachments: [] });
      return [202, {}];
    }
    if (method === 'POST' && rest === '/messages') {
      const mime = mimeOf(body, type);
      if (!mime)
        return graphError(
          400,
          'ErrorMimeContentInvalidBase64String',
          'Invalid base64 string for MIME content.',
        );
      const draftId = id('draft');
      drafts.set(draftId, { mailbox, mime, attachments: [] });
      return [201, { id: draftId }];
    }
    const draftPath = /^\/messages\/([^/]+)(\/.*)?$/.exec(rest);
    const draft = draftPath ? drafts.get(decodeURIComponent(draftPath[1] ?? '')) : undefined;
    if (!draftPath || !draft)
      return graphError(
        404,
        'ErrorItemNotFound',
        'The specified object was not found in the store.',
      );
    const action = draftPath[2] ?? '';
    if (method === 'DELETE' && action === '') {
      drafts.delete(decodeURIComponent(draftPath[1] ?? ''));
      return [204, {}];
    }
    if (method === 'POST' && action === '/attachments/createUploadSession') {
      const item = (
        JSON.parse(body.toString('utf8')) as {
          AttachmentItem: { name: string; size: number; contentType: string };
        }
      ).AttachmentItem;
      const sessionId = id('upload');
      uploads.set(sessionId, {
        draft,
        name: item.name,
        contentType: item.contentType,
        size: item.size,
        chunks: [],
      });
      return [
        201,
        {
          uploadUrl: `${url}/upload/${sessionId}`,
          expirationDateTime: new Date(Date.now() + 3600_000).toISOString(),
          nextExpectedRanges: ['0-'],
        },
      ];
    }
    if (method === 'POST' && action === '/send') {
      drafts.delete(decodeURIComponent(draftPath[1] ?? ''));
      sent.push({ mailbox, mime: draft.mime, via: 'draft', attachments: draft.attachments });
      return [202, {}];
    }
    return graphError(400, 'BadRequest', `Unsupported ${method} ${rest}`);
  }

  function upload(
    sessionId: string,
    body: Buffer,
    range: string | undefined,
    authorized: boolean,
  ): Reply {
    const session = uploads.get(sessionId);
    if (!session) return graphError(404, 'ErrorItemNotFound', 'No such upload session');
    if (authorized)
      return graphError(
        401,
        'InvalidAuthenticationToken',
        'An upload URL takes no Authorization header',
      );
    const received = session.chunks.reduce((sum, c) => sum + c.length, 0);
    const match = /^bytes (\d+)-(\d+)\/(\d+)$/.exec(range ?? '');
    if (
      !match ||
      Number(match[1]) !== received ||
      Number(match[2]) !== received + body.length - 1 ||
      Number(match[3]) !== session.size
    )
      return graphError(
        416,
        'InvalidRange',
        `Bad Content-Range "${range ?? ''}" after ${received} bytes`,
      );
    const last = received + body.length === session.size;
    if (!last && body.length % UPLOAD_RANGE_UNIT !== 0)
      return graphError(
        400,
        'InvalidChunk',
        'A range that is not the last must be a multiple of 320 KiB',
      );
    session.chunks.push(body);
    if (!last) return [200, { nextExpectedRanges: [`${received + body.length}-`] }];
    uploads.delete(sessionId);
    session.draft.attachments.push({
      name: session.name,
      contentType: session.contentType,
      bytes: Buffer.concat(session.chunks),
      chunkSizes: session.chunks.map((c) => c.length),
    });
    return [201, {}];
  }

  function route(
    method: string,
    path: string,
    body: Buffer,
    headers: Record<string, string | string[] | undefined>,
  ): Reply {
    if (body.length > GRAPH_REQUEST_LIMIT)
      return graphError(413, 'RequestEntityTooLarge', 'The request is larger than 4 MB');
    if (path === `/${tenant}/oauth2/v2.0/token` && method === 'POST')
      return token(new URLSearchParams(body.toString('utf8')));
    const uploadPath = /^\/upload\/([^/]+)$/.exec(path);
    if (uploadPath && method === 'PUT')
      return upload(
        uploadPath[1] ?? '',
        body,
        headers['content-range'] as string | undefined,
        Boolean(headers.authorization),
      );
    const user = /^\/v1\.0\/users\/([^/]+)(\/.*)?$/.exec(path);
    if (!user) return graphError(404, 'NotFound', path);
    const bearer = /^Bearer (.+)$/.exec(String(headers.authorization ?? ''))?.[1] ?? '';
    if (!tokens.has(bearer))
      return graphError(401, 'InvalidAuthenticationToken', 'Access token is empty or invalid.');
    return mailboxRequest(
      method,
      decodeURIComponent(user[1] ?? ''),
      user[2] ?? '',
      body,
      headers['content-type'] as string | undefined,
    );
  }

  const server = https.createServer({ key: certs.key, cert: certs.cert }, (request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      const body = Buffer.concat(chunks);
      const path = (request.url ?? '').split('?')[0] ?? '';
      const [status, reply, extra] = route(request.method ?? '', path, body, request.headers);
      requests.push({
        method: request.method ?? '',
        path,
        status,
        at: Date.now(),
        bytes: body.length,
      });
      response.writeHead(status, { 'content-type': 'application/json', ...extra });
      response.end(status === 204 ? undefined : JSON.stringify(reply));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    tokenUrl: `${url}/${tenant}/oauth2/v2.0/token`,
    baseUrl: `${url}/v1.0`,
    tenant,
    clientId,
    clientSecret,
    requests,
    sent,
    tokenScopes,
    setMode(next) {
      mode = next;
      // An expired secret shows once the token it got expires too: tokens issued so far stop working
      if (next.kind === 'expired-secret') tokens.clear();
    },
    setRoles(next) {
      roles = next;
    },
    secrets: () => [clientSecret, ...tokens],
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
