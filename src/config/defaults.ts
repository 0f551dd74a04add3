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
    allowNetworks: [
      '127.0.0.0/8',
      '::1/128',
      '10.0.0.0/8',
      '172.16.0.0/12',
      '192.168.0.0/16',
      'fc00::/7',
    ],
    /** Accept allowNetworks entries that open the relay to the world (0.0.0.0/0, ::/0, a public range wider than /16): the dashboard and log warn while any is listed */
    allowWideNetworks: false,
    maxMessageSize: 52_428_800,
    maxRecipients: 100,
    maxConnections: 100,
    maxConnectionsPerClient: 20,
    maxMessagesPerMinute: 600,
    idleTimeout: '5m',
    tls: { starttls: false, port: 0, profile: 'modern', certFile: '', keyFile: '' },
    /** Per-device policy by client address: {"10.0.0.5": {"allowDomains": ["contoso.com"], "maxMessagesPerMinute": 10, "rewriteFrom": "scanner@contoso.com"}} */
    devices: {} as Record<
      string,
      { allowDomains?: string[]; maxMessagesPerMinute?: number; rewriteFrom?: string }
    >,
  },
  pop3: {
    host: '0.0.0.0',
    port: 1110,
    /** Implicit-TLS port (995 style); 0 = off. STLS is offered whenever a certificate is available */
    tls: { port: 0, certFile: '', keyFile: '' },
    /** Refuse USER/PASS and AUTH on a connection that is not encrypted */
    requireTlsForLogin: false,
    idleTimeout: '10m',
    maxConnections: 50,
  },
  web: {
    host: '0.0.0.0',
    port: 8080,
    tls: { enabled: false, certFile: '', keyFile: '' },
    sessionTtl: '12h',
  },
  delivery: {
    mode: 'smarthost',
    smarthost: {
      host: '',
      port: 587,
      security: 'starttls',
      user: '',
      password: '',
      /** password: AUTH PLAIN/LOGIN with user + password; oauth2: XOAUTH2 with tokens from delivery.oauth2 */
      auth: 'password',
    },
    /** OAuth2 for the smarthost (Microsoft 365, Google, or a generic provider) */
    oauth2: {
      provider: 'microsoft',
      /** device: an admin signs in once on the web page; client_credentials: app-only (Microsoft 365 service principal) */
      flow: 'device',
      tenant: '',
      clientId: '',
      clientSecret: '',
      /** Only for provider "generic" (and tests): the token and device-authorization endpoints, and the scope */
      tokenUrl: '',
      deviceUrl: '',
      scope: '',
    },
    /** Microsoft Graph (delivery.mode "graph"): sendMail with the application permission Mail.Send, signed in with client credentials */
    graph: {
      tenant: '',
      clientId: '',
      clientSecret: '',
      /** from: send from the mailbox of the (rewritten) From address; mailbox: always from the mailbox below */
      sender: 'from',
      mailbox: '',
      /** Only for tests: the token endpoint and the Graph base URL ("" = Microsoft's) */
      tokenUrl: '',
      baseUrl: '',
    },
    /** Sender alignment for SPF/DMARC: rewrite the envelope sender and/or From; the device's address goes to Reply-To */
    rewrite: { envelopeFrom: '', headerFrom: '', useDeviceName: false },
    /** DKIM signing with a key generated on the box; the page shows the DNS record to publish */
    dkim: { enabled: false, domain: '', selector: 'edge-relay' },
    tls: { verify: true, caFile: '' },
    /** tls: the policy for MX hosts: none | may (STARTTLS when offered) | encrypt | verify */
    mx: { port: 25, tls: 'may' },
    /** Per-domain overrides, e.g. {"example.com": {"route": "host", "host": "10.0.0.5", "port": 25, "tls": "encrypt"}} */
    domains: {} as Record<
      string,
      {
        route: 'mx' | 'smarthost' | 'host';
        host?: string;
        port?: number;
        tls?: 'none' | 'may' | 'encrypt' | 'verify';
        rewrite?: { envelopeFrom?: string; headerFrom?: string };
        pacing?: { messagesPerMinute: number; recipientsPerDay: number };
      }
    >,
    /** MTA-STS (RFC 8461); port is the HTTPS port policies are fetched from (443; tests change it) */
    mtaSts: { enabled: true, port: 443 },
    dns: { servers: [] as string[], timeout: '10s' },
    retry: { delays: ['1m', '5m', '15m', '30m', '1h', '2h', '4h'], maxAge: '5d' },
    /** The smarthost's or Graph's sending limits (0 = none): mail over them waits in the queue instead of being refused by the provider */
    pacing: { messagesPerMinute: 0, recipientsPerDay: 0 },
    concurrency: 8,
    /** At most this many of the deliveries at once go to one destination (a domain, the smarthost), so one slow domain can't take every slot */
    concurrencyPerDestination: 4,
    timeout: '2m',
    bounce: { notifySender: false },
    /** Send a "still trying" notice after a message waited this long; "" = never */
    delayWarning: '',
  },
  mailbox: {
    localDomains: ['edge-relay.lan'],
    postmaster: 'postmaster',
    retention: '30d',
    quota: 1_073_741_824,
    /** Keep a copy of relayed mail in a local mailbox: [{"mailbox": "archive", "senders": [], "networks": []}] (empty lists match all) */
    copies: [] as { mailbox: string; senders?: string[]; networks?: string[] }[],
  },
  alerts: {
    /** Alert when the upstream has failed for this long */
    upstreamFailingFor: '15m',
    /** Alert when this many messages wait in the queue; 0 = never */
    queueThreshold: 100,
    /** Alert when an upstream has sent this share (%) of its daily recipient limit; 0 = never */
    dailyCapPercent: 90,
    /** JSON POST to this URL as well as mail to the postmaster mailbox; "" = off */
    webhook: '',
    /** Daily digest: cron schedule and recipient address ("" = off) */
    digest: { schedule: '0 7 * * *', to: '' },
  },
} as const;
