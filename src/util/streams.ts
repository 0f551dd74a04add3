/**
 * Pipes a source through transforms into a sink, resolving when the sink has
 * finished and rejecting, with every stream destroyed, as soon as any of them
 * fails or closes early. What `stream/promises` pipeline does, without the
 * AbortController it aborts at the end of every run: building that abort's
 * DOMException and stack was a measurable share of accepting a small message.
 */
import { finished, type Readable, type Transform, type Writable } from 'node:stream';

export function pipeThrough(
  source: Readable,
  transforms: Transform[],
  sink: Writable,
): Promise<void> {
  const streams = [source, ...transforms, sink];
  return new Promise((resolve, reject) => {
    let settled = false;
    const fail = (err: Error): void => {
      if (settled) return;
      settled = true;
      for (const stream of streams) stream.destroy(err);
      reject(err);
    };
    streams.forEach((stream, index) => {
      const last = index === streams.length - 1;
      finished(stream, { readable: !last, writable: index > 0 }, (err) => {
        if (err) fail(err);
        else if (last && !settled) {
          settled = true;
          resolve();
        }
      });
    });
    let upstream: Readable = source;
    for (const transform of transforms) upstream = upstream.pipe(transform);
    upstream.pipe(sink);
  });
}
