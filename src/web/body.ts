/**
 * Request bodies as the routes read them. A body that cannot be parsed
 * (broken multipart, a form that is not one) is the sender's mistake: a 400
 * with a clear message, never a 500. Too-large bodies never get here: the
 * size limit in server.ts answers 413 first.
 */
import type { Context } from 'hono';
import { UsageError, errorMessage } from '../errors.js';

type FormBody = Awaited<ReturnType<Context['req']['parseBody']>>;

export async function formBody(c: Context, options: { all?: boolean } = {}): Promise<FormBody> {
  try {
    return await c.req.parseBody({ all: options.all ?? false });
  } catch (err) {
    throw new UsageError(
      `Cannot read the form sent as "${(c.req.header('content-type') ?? '').slice(0, 80)}": ${errorMessage(err)}`,
    );
  }
}

/** A JSON body's fields; a body that is not a JSON object reads as no fields (the handler then says what is missing) */
export async function jsonFields(c: Context): Promise<Record<string, unknown>> {
  const body: unknown = await c.req.json().catch(() => undefined);
  return body !== null && typeof body === 'object' && !Array.isArray(body)
    ? (body as Record<string, unknown>)
    : {};
}

/** A JSON field as text: strings and numbers as given, anything else (objects, arrays, null) as "" */
export function textField(fields: Record<string, unknown>, name: string): string {
  const value = fields[name];
  return typeof value === 'string' ? value : typeof value === 'number' ? String(value) : '';
}
