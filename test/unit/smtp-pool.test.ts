/** Which deliveries may share an SMTP connection (pure) */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { SmtpTarget } from '../../src/deliver/smtp-client.js';
import { poolKey } from '../../src/deliver/smtp-pool.js';

const target: SmtpTarget = {
  host: '192.0.2.1',
  port: 587,
  security: 'starttls',
  verify: true,
  name: 'relay.test',
  timeoutMs: 1000,
  auth: { method: 'password', user: 'u', pass: 'secret one' },
};

test('the same upstream and settings share a key; the secret is not readable in it', () => {
  assert.equal(poolKey(target), poolKey({ ...target }));
  assert.ok(!String(poolKey(target)).includes('secret'));
});

test('another port, TLS mode, certificate check, MX name or password: another key', () => {
  const key = poolKey(target);
  for (const change of [
    { port: 465 },
    { security: 'none' as const },
    { verify: false },
    { servername: 'mx.example.test' },
    { auth: { method: 'password' as const, user: 'u', pass: 'secret two' } },
  ]) {
    assert.notEqual(poolKey({ ...target, ...change }), key, JSON.stringify(change));
  }
});

test('OAuth2 sessions are never shared', () => {
  const tokens = { accessToken: () => Promise.resolve('t') };
  assert.equal(poolKey({ ...target, auth: { method: 'oauth2', user: 'u', tokens } }), null);
});
