/**
 * The TLS handshake after STLS. It has a time limit of its own: plain text
 * sent after STLS is dropped, so a client that never starts TLS would
 * otherwise hold its connection until the idle timeout.
 */
import type tls from 'node:tls';

/** A TLS handshake on a LAN takes milliseconds, even on a Raspberry Pi */
const HANDSHAKE_TIMEOUT_MS = 10_000;

/** Resolves once `secure` is encrypted; rejects when it fails, closes, or outlasts the limit or the session's idle timeout */
export async function handshake(secure: tls.TLSSocket, idleTimeoutMs: number): Promise<void> {
  const limitMs = Math.min(idleTimeoutMs, HANDSHAKE_TIMEOUT_MS);
  let timer: NodeJS.Timeout | undefined;
  try {
    await new Promise<void>((resolve, reject) => {
      secure.once('secure', resolve);
      secure.once('error', reject);
      secure.once('close', () => reject(new Error('Connection closed during the TLS handshake')));
      timer = setTimeout(
        () => reject(new Error(`No TLS handshake within ${limitMs} ms after STLS`)),
        limitMs,
      );
    });
  } finally {
    clearTimeout(timer);
  }
}
