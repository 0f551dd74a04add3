/**
 * A message too large for one sendMail request: a draft made from the
 * message without its large attachments (still MIME, so headers, text and
 * small parts are the device's own), each large attachment uploaded in
 * chunks through an upload session, then the draft sent. Needs the
 * application permission Mail.ReadWrite besides Mail.Send.
 */
import { Readable } from 'node:stream';
import { RelayError } from '../../errors.js';
import type { GraphReply } from './graph-http.js';
import type { GraphSession } from './graph-session.js';
import {
  base64Length,
  base64Of,
  decodedPart,
  measure,
  surveyParts,
  withoutParts,
  type LargePart,
  type OpenMessage,
} from './mime-parts.js';

/** Graph's documented lower bound for upload sessions; smaller parts stay in the draft */
export const UPLOAD_MIN_BYTES = 3 * 1024 * 1024;
/** Upload ranges are multiples of 320 KiB and at most 4 MB: 12 x 320 KiB */
export const CHUNK_BYTES = 12 * 320 * 1024;

export type StepResult =
  | { ok: true; detail: string }
  | { ok: false; step: string; reply: GraphReply };

const failed = (step: string, reply: GraphReply): StepResult => ({ ok: false, step, reply });

/** A MIME message (at most `limit` bytes raw) as Graph's text/plain base64 body */
export const mimeBody = (open: OpenMessage, size: number) => ({
  open: async () => base64Of(await open()),
  length: base64Length(size),
  contentType: 'text/plain',
});

async function uploadChunk(
  session: GraphSession,
  url: string,
  part: LargePart,
  offset: number,
  bytes: Buffer,
): Promise<GraphReply> {
  return session.upload({
    method: 'PUT',
    url,
    headers: { 'content-range': `bytes ${offset}-${offset + bytes.length - 1}/${part.size}` },
    stream: {
      open: () => Readable.from([bytes]),
      length: bytes.length,
      contentType: 'application/octet-stream',
    },
  });
}

async function uploadPart(
  session: GraphSession,
  messageId: string,
  open: OpenMessage,
  part: LargePart,
): Promise<StepResult | undefined> {
  const step = `upload of "${part.name}"`;
  const attachmentItem = {
    attachmentType: 'file',
    name: part.name,
    size: part.size,
    contentType: part.contentType,
    isInline: part.inline,
    ...(part.contentId ? { contentId: part.contentId } : {}),
  };
  const created = await session.call({
    method: 'POST',
    path: `/messages/${encodeURIComponent(messageId)}/attachments/createUploadSession`,
    body: { AttachmentItem: attachmentItem },
  });
  const url = created.body.uploadUrl;
  if (created.status !== 201 && created.status !== 200) return failed(step, created);
  if (typeof url !== 'string')
    throw new RelayError(`Microsoft Graph gave no upload URL for "${part.name}"`, {
      kind: 'temporary',
    });
  // Decoded pieces gather until a chunk is full: one copy per chunk, at most a chunk and a piece held
  let held: Buffer[] = [];
  let heldBytes = 0;
  let offset = 0;
  for await (const decoded of decodedPart(open, part.index)) {
    held.push(decoded);
    heldBytes += decoded.length;
    if (heldBytes < CHUNK_BYTES) continue;
    let pending = Buffer.concat(held, heldBytes);
    while (pending.length >= CHUNK_BYTES) {
      const reply = await uploadChunk(session, url, part, offset, pending.subarray(0, CHUNK_BYTES));
      if (reply.status >= 300) return failed(step, reply);
      offset += CHUNK_BYTES;
      pending = pending.subarray(CHUNK_BYTES);
    }
    held = [pending];
    heldBytes = pending.length;
  }
  const pending = Buffer.concat(held, heldBytes);
  if (offset + pending.length !== part.size)
    throw new RelayError(
      `The attachment "${part.name}" decoded to ${offset + pending.length} bytes, not ${part.size}`,
      { kind: 'permanent' },
    );
  if (pending.length === 0) return undefined;
  const last = await uploadChunk(session, url, part, offset, pending);
  return last.status >= 300 ? failed(step, last) : undefined;
}

export async function sendLarge(
  session: GraphSession,
  open: OpenMessage,
  limit: number,
): Promise<StepResult> {
  const survey = await surveyParts(open, UPLOAD_MIN_BYTES);
  const dropped = new Set(survey.large.map((part) => part.index));
  const draft = async () => withoutParts(open, dropped);
  const draftSize = await measure(draft);
  if (draftSize > limit)
    throw new RelayError(
      `The message (${survey.size} bytes) is too large for Microsoft Graph: without its attachments of 3 MB and more it is still ${draftSize} bytes, over the ${limit} bytes one request may carry`,
      { kind: 'permanent' },
    );
  const created = await session.call({
    method: 'POST',
    path: '/messages',
    stream: mimeBody(draft, draftSize),
  });
  const id = created.body.id;
  if (created.status !== 201 || typeof id !== 'string') return failed('draft', created);
  const removeDraft = () =>
    session
      .call({ method: 'DELETE', path: `/messages/${encodeURIComponent(id)}` })
      .catch(() => undefined);
  try {
    for (const part of survey.large) {
      const trouble = await uploadPart(session, id, open, part);
      if (trouble) {
        await removeDraft();
        return trouble;
      }
    }
  } catch (err) {
    await removeDraft();
    throw err;
  }
  const sent = await session.call({
    method: 'POST',
    path: `/messages/${encodeURIComponent(id)}/send`,
  });
  if (sent.status !== 202) {
    await removeDraft();
    return failed('send of the draft', sent);
  }
  return {
    ok: true,
    detail: `Microsoft Graph accepted it for sending as ${session.mailbox} (draft with ${survey.large.length} attachment${survey.large.length === 1 ? '' : 's'} uploaded, 202)`,
  };
}
