/**
 * One HTTPS request to Microsoft Graph (or to an upload URL it handed out),
 * answered with its status, its Retry-After and its JSON body. Certificates
 * are checked as for the smarthost (`delivery.tls`). The bearer token goes
 * only in the header and never into an error.
 */
import https from 'node:https';
import type { Readable } from 'node:stream';
import { RelayError, errorMessage } from '../../errors.js';
import { parseJson, type TokenHttpOptions } from '../../oauth/token-http.js';
import { trustStore } from '../../tls/trust.js';
import { parseRetryAfter } from '../failure-policy.js';

export interface GraphRequest {
  method: 'GET' | 'POST' | 'PUT' | 'DELETE';
  url: string;
  /** Absent for upload URLs: they carry their own authorization and refuse a second one */
  token?: string;
  headers?: Record<string, string>;
  /** A JSON value, or a body of known length */
  body?: unknown;
  stream?: { open: () => Readable | Promise<Readable>; length: number; contentType: string };
}

export interface GraphReply {
  status: number;
  /** Retry-After in ms, when the reply has one (seconds or an HTTP date) */
  retryAfterMs?: number;
  body: Record<string, unknown>;
}

const MAX_REPLY_BYTES = 256 * 1024;

export async function graphRequest(
  request: GraphRequest,
  http: TokenHttpOptions,
): Promise<GraphReply> {
  const target = new URL(request.url);
  if (target.protocol !== 'https:')
    throw new RelayError(`Microsoft Graph must be reached over https: "${target.origin}"`, {
      kind: 'temporary',
    });
  const json = request.body === undefined ? undefined : Buffer.from(JSON.stringify(request.body));
  const headers: Record<string, string | number> = {
    accept: 'application/json',
    ...request.headers,
  };
  if (request.token) headers.authorization = `Bearer ${request.token}`;
  if (json)
    Object.assign(headers, { 'content-type': 'application/json', 'content-length': json.length });
  if (request.stream)
    Object.assign(headers, {
      'content-type': request.stream.contentType,
      'content-length': request.stream.length,
    });
  if (!json && !request.stream && request.method !== 'GET') headers['content-length'] = 0;
  const source = request.stream ? await request.stream.open() : undefined;
  return new Promise<GraphReply>((resolve, reject) => {
    const outgoing = https.request(
      target,
      {
        method: request.method,
        headers,
        ca: trustStore(http.caFile),
        rejectUnauthorized: http.verify,
        minVersion: 'TLSv1.2',
        timeout: http.timeoutMs,
      },
      (response) => {
        const chunks: Buffer[] = [];
        let size = 0;
        response.on('data', (chunk: Buffer) => {
          size += chunk.length;
          if (size <= MAX_REPLY_BYTES) chunks.push(chunk);
        });
        response.on('end', () => {
          const wait = parseRetryAfter(response.headers['retry-after'], new Date());
          resolve({
            status: response.statusCode ?? 0,
            ...(wait === undefined ? {} : { retryAfterMs: wait }),
            body: parseJson(Buffer.concat(chunks).toString('utf8')),
          });
        });
        response.on('error', reject);
      },
    );
    outgoing.on('timeout', () => outgoing.destroy(new Error('Timed out')));
    outgoing.on('error', (err) => {
      source?.destroy();
      reject(
        new RelayError(`Microsoft Graph (${target.host}) unreachable: ${errorMessage(err)}`, {
          kind: 'temporary',
          cause: err,
        }),
      );
    });
    if (!source) return void outgoing.end(json);
    source.once('error', (err) => outgoing.destroy(err));
    source.pipe(outgoing);
  });
}
