/**
 * Security headers on every response. The page has no scripts at all and
 * its stylesheet is served from /assets, so the policy can forbid every
 * inline thing and every other origin.
 */
import type { MiddlewareHandler } from 'hono';

export const CSP = [
  "default-src 'none'",
  "style-src 'self'",
  "img-src 'self'",
  "form-action 'self'",
  "frame-ancestors 'none'",
  "base-uri 'none'",
].join('; ');

export function securityHeaders(https: boolean): MiddlewareHandler {
  return async (c, next) => {
    await next();
    c.header('Content-Security-Policy', CSP);
    c.header('X-Content-Type-Options', 'nosniff');
    c.header('X-Frame-Options', 'DENY');
    c.header('Referrer-Policy', 'no-referrer');
    c.header('Cross-Origin-Opener-Policy', 'same-origin');
    c.header('Cross-Origin-Resource-Policy', 'same-origin');
    c.header('Permissions-Policy', 'camera=(), microphone=(), geolocation=()');
    if (!c.res.headers.has('Cache-Control')) c.header('Cache-Control', 'no-store');
    if (https) c.header('Strict-Transport-Security', 'max-age=31536000');
  };
}
