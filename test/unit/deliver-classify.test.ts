/** From what an upstream did to a per-recipient outcome (pure) */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { classifyFailure, describeFailure } from '../../src/deliver/classify.js';

const where = 'mx1.example.test:2525';

test('a 5xx reply to a recipient bounces, with the exact reply, host and command', () => {
  assert.deepEqual(classifyFailure({ code: 'EENVELOPE', responseCode: 550, response: '550 5.1.1 No such user', command: 'RCPT TO', message: 'Recipient command failed' }, where), {
    status: 'bounced',
    error: '550 5.1.1 No such user (mx1.example.test:2525, after RCPT TO)',
  });
});

test('a 4xx reply is deferred', () => {
  assert.deepEqual(classifyFailure({ code: 'EMESSAGE', responseCode: 451, response: '451 4.3.0 Try later', command: 'DATA', message: 'Message failed' }, where), {
    status: 'deferred',
    error: '451 4.3.0 Try later (mx1.example.test:2525, after DATA)',
  });
});

test('network and TLS failures are deferred, even with a 5xx reply to STARTTLS', () => {
  assert.equal(classifyFailure({ code: 'ECONNECTION', message: 'connect ECONNREFUSED 127.0.0.9:25' }, where).status, 'deferred');
  assert.equal(classifyFailure({ code: 'ETIMEDOUT', message: 'Greeting never received' }, where).status, 'deferred');
  assert.equal(classifyFailure({ code: 'ETLS', responseCode: 502, response: '502 5.5.1 STARTTLS not supported', command: 'STARTTLS', message: 'Error upgrading connection with STARTTLS' }, where).status, 'deferred');
});

test('a 5xx greeting and authentication failures are always retried; a 5xx to a command after the greeting bounces', () => {
  assert.deepEqual(classifyFailure({ code: 'EPROTOCOL', responseCode: 554, response: '554 5.3.2 No service', command: 'CONN', message: 'Invalid greeting' }, where), {
    status: 'deferred',
    error: '554 5.3.2 No service (mx1.example.test:2525, after CONN)',
  });
  assert.equal(classifyFailure({ code: 'EPROTOCOL', responseCode: 554, response: '554 5.5.1 Bad sequence', command: 'DATA', message: 'Invalid response' }, where).status, 'bounced');
  assert.equal(classifyFailure({ code: 'EAUTH', responseCode: 535, response: '535 5.7.8 Bad credentials', message: 'Invalid login' }, where).status, 'deferred');
});

test('without a reply the description names the code once and the host', () => {
  assert.equal(describeFailure({ code: 'ECONNECTION', message: 'connect ECONNREFUSED 127.0.0.9:25' }, where), 'ECONNECTION: connect ECONNREFUSED 127.0.0.9:25 (mx1.example.test:2525)');
  assert.equal(describeFailure({ code: 'ETIMEDOUT', message: 'ETIMEDOUT: timed out' }, where), 'ETIMEDOUT: timed out (mx1.example.test:2525)');
});
