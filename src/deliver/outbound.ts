/**
 * Prepares relayed mail for the upstream: splits a group's recipients by the
 * sender rewrite that applies to them, and gives each part its envelope and
 * a body stream that makes long lines, NUL and bare CR safe and applies the
 * header edits on the way out (the spool file is never changed, so every
 * attempt starts from the original).
 */
import type { Readable, Transform } from 'node:stream';
import type { Config } from '../config/schema.js';
import { parseAddress } from '../route/address.js';
import { HeaderSectionEditor } from './header-section.js';
import { LineFixer, lineFixPlan, type LineFixPlan } from './line-safety.js';
import {
  planKey,
  rewriteEnvelopeFrom,
  rewriteHeaders,
  rewritePlan,
  type RewriteContext,
  type RewritePlan,
} from './rewrite.js';
import type { Envelope } from './smtp-client.js';

export interface OutboundPart {
  envelope: Envelope;
  plan: RewritePlan;
  openBody: () => Promise<Readable>;
}

export interface OutboundJob {
  from: string;
  recipients: string[];
  openBody: () => Promise<Readable>;
}

/** `source` through `transform`, errors and early ends passed both ways */
export function through(source: Readable, transform: Transform): Readable {
  source.once('error', (err) => transform.destroy(err));
  transform.once('close', () => source.destroy());
  return source.pipe(transform);
}

export function outboundParts(
  job: OutboundJob,
  config: Config,
  context: RewriteContext,
): OutboundPart[] {
  const parts = new Map<string, { plan: RewritePlan; to: string[] }>();
  for (const address of job.recipients) {
    const plan = rewritePlan(config, parseAddress(address)?.domain ?? '', context);
    const key = planKey(plan);
    const part = parts.get(key) ?? { plan, to: [] };
    part.to.push(address);
    parts.set(key, part);
  }
  const openSafe = lineSafe(job.openBody);
  return [...parts.values()].map(({ plan, to }) => ({
    envelope: { from: rewriteEnvelopeFrom(job.from, plan), to },
    plan,
    openBody: plan.headerFrom
      ? async () =>
          through(
            await openSafe(),
            new HeaderSectionEditor((headers) => rewriteHeaders(headers, plan, job.from)),
          )
      : openSafe,
  }));
}

/** The message with its lines made safe for any upstream (line-safety.ts), planned once however often it is opened */
function lineSafe(open: () => Promise<Readable>): () => Promise<Readable> {
  let plan: Promise<LineFixPlan> | undefined;
  return async () => {
    plan ??= lineFixPlan(open);
    const reencode = await plan;
    return reencode ? through(await open(), new LineFixer(reencode)) : open();
  };
}
