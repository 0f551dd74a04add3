/**
 * One form POST to a token endpoint over verified HTTPS, answered with JSON
 * (RFC 6749 section 4, RFC 8628). The extra CA in `delivery.tls.caFile` is
 * trusted here as it is for the upstream. Form values (secrets) never
 * appear in errors; only the endpoint's host and its error code do.
 */
import https from 'node:https';
import { RelayError, errorMessage } from '../errors.js';
import { trustStore } from '../tls/trust.js';

export interface TokenHttpOptions {
  caFile?: string;
  verify: boolean;
  timeoutMs?: number;
}

export interface TokenReply {
  status: number;
  body: Record<string, unknown>;
}

const MAX_REPLY_BYTES = 64 * 1024;
const DEFAULT_TIMEOUT_MS = 20_000;

export async function postForm(
  url: string,
  form: Record<string, string>,
  options: TokenHttpOptions,
): Promise<TokenReply> {
  const target = new URL(url);
  // Refresh tokens and client secrets go in this body: never over plain HTTP
  if (target.protocol !== 'https:')
    throw new RelayError(`Token endpoint must use https: "${target.origin}"`, {
      kind: 'temporary',
    });
  const payload = new URLSearchParams(form).toString();
  return new Promise<TokenReply>((resolve, reject) => {
    const request = https.request(
      target,
      {
        method: 'POST',
        headers: {
          'content-type': 'application/x-www-form-urlencoded',
          accept: 'application/json',
          'content-length': Buffer.byteLength(payload),
        },
        ca: trustStore(options.caFile),
        rejectUnauthorized: options.verify,
        minVersion: 'TLSv1.2',
        timeout: options.timeoutMs ?? DEFAULT_TIMEOUT_MS,
      },
      (response) => {
        const chunks: Buffer[] = [];
        let size = 0;
        response.on('data', (chunk: Buffer) => {
          size += chunk.length;
          if (size > MAX_REPLY_BYTES)
            request.destroy(new Error(`Reply larger than ${MAX_REPLY_BYTES} bytes`));
          else chunks.push(chunk);
        });
        response.on('end', () =>
          resolve({
            status: response.statusCode ?? 0,
            body: parseJson(Buffer.concat(chunks).toString('utf8')),
          }),
        );
        response.on('error', reject);
      },
    );
    request.on('timeout', () => request.destroy(new Error('Timed out')));
    request.on('error', (err) =>
      reject(
        new RelayError(`Token endpoint ${target.host} unreachable: ${errorMessage(err)}`, {
          kind: 'temporary',
          cause: err,
        }),
      ),
    );
    request.end(payload);
  });
}

/** A JSON object reply; anything else (HTML error pages, arrays, garbage) reads as {} */
export function parseJson(text: string): Record<string, unknown> {
  try {
    const value: unknown = JSON.parse(text);
    return value && typeof value === 'object' && !Array.isArray(value)
      ? (value as Record<string, unknown>)
      : {};
  } catch {
    return {};
  }
}

export const stringField = (body: Record<string, unknown>, key: string): string | undefined =>
  typeof body[key] === 'string' ? body[key] : undefined;
export const numberField = (body: Record<string, unknown>, key: string): number | undefined => {
  const value = body[key];
  const number = typeof value === 'string' ? Number(value) : value;
  return typeof number === 'number' && Number.isFinite(number) ? number : undefined;
};
