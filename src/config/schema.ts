/**
 * The configuration schema (pure). Every key is known: an unknown key, a wrong
 * type or a bad CIDR is an error that names the key.
 */
import { z } from 'zod';
import ipaddr from 'ipaddr.js';
import { parseDuration } from '../util/duration.js';
import { mailboxNameProblem } from '../mailbox/names.js';
import { wideNetworkProblem } from './networks.js';

const duration = z.string().refine((text) => parseDuration(text) !== null, {
  message: 'Expected a duration like "30s", "5m", "2h" or "5d"',
});

const port = z.number().int().min(0).max(65535);

const cidr = z.string().refine(
  (text) => {
    try {
      ipaddr.parseCIDR(text);
      return true;
    } catch {
      return ipaddr.isValid(text);
    }
  },
  { message: 'Expected a network like "192.168.1.0/24" or an address' },
);

const hostPort = z
  .string()
  .refine(
    (text) =>
      /^(\[[0-9a-fA-F:.]+\]|[0-9a-fA-F:.]+?)(:\d{1,5})?$/.test(text) &&
      ipaddr.isValid(splitHostPort(text).host),
    {
      message: 'Expected a resolver as "IP" or "IP:PORT"',
    },
  );

const domain = z
  .string()
  .regex(
    /^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$/i,
    'Expected a domain name',
  );

const emailOrEmpty = z.union([z.literal(''), z.email()]);

/** The smarthost's user name, password or OAuth2 token would cross the network readable by anyone on the way */
export const CLEAR_CREDENTIALS =
  'Without TLS the user name and password (or OAuth2 token) would cross the network in clear: choose "starttls" or "tls", or remove the user name and password';

const mailboxName = z.string().superRefine((name, ctx) => {
  const problem = mailboxNameProblem(name);
  if (problem) ctx.addIssue({ code: 'custom', message: problem });
});

/** Messages a minute and recipients a day an upstream accepts from us; 0 = no limit */
const pacing = z.strictObject({
  messagesPerMinute: z.number().int().min(0),
  recipientsPerDay: z.number().int().min(0),
});

const tlsPolicy = z.enum(['none', 'may', 'encrypt', 'verify']);
const certPair = { certFile: z.string(), keyFile: z.string() };

export const configSchema = z.strictObject({
  hostname: domain,
  dataDir: z.string().min(1),
  smtp: z
    .strictObject({
      host: z.string(),
      port,
      allowNetworks: z.array(cidr),
      allowWideNetworks: z.boolean(),
      maxMessageSize: z.number().int().positive(),
      maxRecipients: z.number().int().positive(),
      maxConnections: z.number().int().positive(),
      maxConnectionsPerClient: z.number().int().positive(),
      maxMessagesPerMinute: z.number().int().positive(),
      idleTimeout: duration,
      tls: z.strictObject({
        starttls: z.boolean(),
        port,
        profile: z.enum(['modern', 'legacy']),
        ...certPair,
      }),
      devices: z.record(
        z
          .string()
          .refine((text) => ipaddr.isValid(text), { message: 'Expected a device IP address' }),
        z.strictObject({
          allowDomains: z.array(domain).optional(),
          maxMessagesPerMinute: z.number().int().positive().optional(),
          rewriteFrom: emailOrEmpty.optional(),
        }),
      ),
    })
    .superRefine((smtp, ctx) => {
      if (smtp.allowWideNetworks) return;
      smtp.allowNetworks.forEach((text, index) => {
        const problem = wideNetworkProblem(text);
        if (problem)
          ctx.addIssue({ code: 'custom', path: ['allowNetworks', index], message: problem });
      });
    }),
  pop3: z.strictObject({
    host: z.string(),
    port,
    tls: z.strictObject({ port, ...certPair }),
    requireTlsForLogin: z.boolean(),
    idleTimeout: duration,
    maxConnections: z.number().int().positive(),
  }),
  web: z.strictObject({
    host: z.string(),
    port,
    tls: z.strictObject({ enabled: z.boolean(), ...certPair }),
    sessionTtl: duration,
  }),
  delivery: z
    .strictObject({
      mode: z.enum(['smarthost', 'mx', 'graph']),
      smarthost: z.strictObject({
        host: z.string(),
        port,
        security: z.enum(['starttls', 'tls', 'none']),
        user: z.string(),
        password: z.string(),
        auth: z.enum(['password', 'oauth2']),
      }),
      oauth2: z
        .strictObject({
          provider: z.enum(['microsoft', 'google', 'generic']),
          flow: z.enum(['device', 'client_credentials']),
          tenant: z.string(),
          clientId: z.string(),
          clientSecret: z.string(),
          tokenUrl: z.union([z.literal(''), z.url({ protocol: /^https?$/ })]),
          deviceUrl: z.union([z.literal(''), z.url({ protocol: /^https?$/ })]),
          scope: z.string(),
        })
        .refine((oauth) => !(oauth.provider === 'google' && oauth.flow === 'client_credentials'), {
          path: ['flow'],
          message:
            'Google does not offer app-only sign-in (client_credentials) for SMTP: use "device"',
        }),
      graph: z
        .strictObject({
          tenant: z.string(),
          clientId: z.string(),
          clientSecret: z.string(),
          sender: z.enum(['from', 'mailbox']),
          mailbox: emailOrEmpty,
          tokenUrl: z.union([z.literal(''), z.url({ protocol: /^https$/ })]),
          baseUrl: z.union([z.literal(''), z.url({ protocol: /^https$/ })]),
        })
        .refine((graph) => graph.sender !== 'mailbox' || graph.mailbox !== '', {
          path: ['mailbox'],
          message: 'Name the mailbox to send from (sender "mailbox")',
        }),
      rewrite: z.strictObject({
        envelopeFrom: emailOrEmpty,
        headerFrom: emailOrEmpty,
        useDeviceName: z.boolean(),
      }),
      dkim: z.strictObject({
        enabled: z.boolean(),
        domain: z.union([z.literal(''), domain]),
        selector: z.string().regex(/^[a-z0-9][a-z0-9-]*$/i, 'Expected a DKIM selector'),
      }),
      tls: z.strictObject({ verify: z.boolean(), caFile: z.string() }),
      mx: z.strictObject({ port, tls: tlsPolicy }),
      domains: z.record(
        domain,
        z.strictObject({
          route: z.enum(['mx', 'smarthost', 'host']),
          host: z.string().optional(),
          port: port.optional(),
          tls: tlsPolicy.optional(),
          rewrite: z
            .strictObject({
              envelopeFrom: emailOrEmpty.optional(),
              headerFrom: emailOrEmpty.optional(),
            })
            .optional(),
          pacing: pacing.optional(),
        }),
      ),
      mtaSts: z.strictObject({ enabled: z.boolean(), port }),
      dns: z.strictObject({ servers: z.array(hostPort), timeout: duration }),
      retry: z.strictObject({ delays: z.array(duration).min(1), maxAge: duration }),
      pacing,
      concurrency: z.number().int().min(1).max(100),
      concurrencyPerDestination: z.number().int().min(1).max(100),
      timeout: duration,
      bounce: z.strictObject({ notifySender: z.boolean() }),
      delayWarning: z.union([z.literal(''), duration]),
    })
    .superRefine((delivery, ctx) => {
      const { security, user, password, auth } = delivery.smarthost;
      if (security === 'none' && (user !== '' || password !== '' || auth === 'oauth2'))
        ctx.addIssue({
          code: 'custom',
          path: ['smarthost', 'security'],
          message: CLEAR_CREDENTIALS,
        });
    }),
  mailbox: z.strictObject({
    localDomains: z.array(domain),
    postmaster: mailboxName,
    retention: duration,
    quota: z.number().int().positive(),
    copies: z.array(
      z.strictObject({
        mailbox: mailboxName,
        senders: z.array(z.string()).optional(),
        networks: z.array(cidr).optional(),
      }),
    ),
  }),
  alerts: z.strictObject({
    upstreamFailingFor: duration,
    queueThreshold: z.number().int().min(0),
    dailyCapPercent: z.number().int().min(0).max(100),
    webhook: z.union([z.literal(''), z.url({ protocol: /^https?$/ })]),
    digest: z.strictObject({ schedule: z.string(), to: z.string() }),
  }),
});

export type Config = z.infer<typeof configSchema>;

export function splitHostPort(text: string): { host: string; port: number | undefined } {
  const bracketed = /^\[([^\]]+)\](?::(\d+))?$/.exec(text);
  if (bracketed)
    return { host: bracketed[1] ?? '', port: bracketed[2] ? Number(bracketed[2]) : undefined };
  const colons = text.split(':').length - 1;
  if (colons === 1) {
    const [host, portText] = text.split(':');
    return { host: host ?? '', port: Number(portText) };
  }
  return { host: text, port: undefined };
}
