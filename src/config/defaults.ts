/**
 * The embedded default configuration: what `serve` runs on without --config.
 * Safe by default: only loopback and private networks may send; TLS upstream
 * is required and verified.
 */
export const DEFAULT_CONFIG = {
  hostname: 'edge-relay.lan',
  dataDir: './data',
  smtp: {
    host: '0.0.0.0',
    port: 2525,
    allowNetworks: ['127.0.0.0/8', '::1/128', '10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16', 'fc00::/7'],
    maxMessageSize: 52_428_800,
    maxRecipients: 100,
    maxConnections: 100,
    idleTimeout: '5m',
    tls: { starttls: false, port: 0, profile: 'modern', certFile: '', keyFile: '' },
  },
  pop3: { host: '0.0.0.0', port: 1110 },
  web: { host: '0.0.0.0', port: 8080 },
  delivery: {
    mode: 'smarthost',
    smarthost: { host: '', port: 587, security: 'starttls', user: '', password: '' },
    tls: { verify: true, caFile: '' },
    mx: { port: 25 },
    dns: { servers: [] as string[] },
    retry: { delays: ['1m', '5m', '15m', '30m', '1h', '2h', '4h'], maxAge: '5d' },
    concurrency: 8,
    timeout: '2m',
    bounce: { notifySender: false },
  },
  mailbox: { localDomains: ['edge-relay.lan'], postmaster: 'postmaster' },
} as const;
