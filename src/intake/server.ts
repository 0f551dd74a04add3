/**
 * SMTP intake: smtp-server wired to our policies and the spool. The hooks
 * decide (admission.ts who may connect, envelope.ts MAIL and RCPT); the spool
 * stores (queue-message.ts); the 250 after DATA is sent only once the spool
 * says the message is durable. This file runs the listeners.
 */
import { EventEmitter } from 'node:events';
import type { AddressInfo } from 'node:net';
import type { SMTPServerAuthentication, SMTPServerSession } from 'smtp-server';
import type { Config } from '../config/schema.js';
import type { UpstreamLimit } from '../deliver/upstream-limits.js';
import { RelayError, errorMessage } from '../errors.js';
import type { Logger } from '../log.js';
import { storageError, type Spool } from '../spool/spool.js';
import { parseDuration } from '../util/duration.js';
import { plainAddress } from '../util/ip.js';
import { loadOrCreateCertificate } from '../util/tls-cert.js';
import { Admission } from './admission.js';
import { EnvelopeChecks } from './envelope.js';
import { LegacySMTPServer, type MakeRoom } from './legacy-server.js';
import { queueMessage } from './queue-message.js';
import { SessionWatch } from './sessions.js';
import { advertisedSize, mainUpstreamLimit, type UpstreamSizes } from './size-limits.js';
import { tlsServerOptions, wantsTls, type TlsServerOptions } from './tls.js';
import { TranscriptLog } from './transcripts.js';

/** What intake needs to know about local mailboxes */
export interface LocalRecipients {
  exists(mailbox: string): boolean;
}

export interface IntakeOptions {
  config: () => Config;
  spool: Spool;
  log: Logger;
  mailboxes: LocalRecipients;
  /** The upstreams' message size limits (deliver/upstream-limits.ts); none known when not given */
  upstreams?: UpstreamSizes;
}

const NONE_KNOWN: UpstreamSizes = { limitOf: () => undefined };

/** How long a session in progress may take to finish when we stop (the relay must exit within 10 s of SIGTERM, docs/development.md, Commands) */
const CLOSE_GRACE_MS = 5_000;

/** How often sessions are checked against their progress deadline */
const SWEEP_MS = 1_000;

const asRelayError = (err: unknown): RelayError =>
  err instanceof RelayError ? err : storageError(err);

/** smtp-server sends err.message as the reply text; ours carries its enhanced status code */
function hookError(relay: RelayError): Error {
  return Object.assign(new Error(`${relay.enhanced} ${relay.message}`), {
    responseCode: relay.smtpCode,
  });
}

type RefusalStage = 'connect' | 'mail' | 'rcpt' | 'data';

export interface DeviceEvent {
  client: string;
  helo: string;
  at: Date;
}

export interface IntakeEvents {
  /** A message was accepted and is durable in the spool */
  queued: [DeviceEvent & { id: string; from: string; to: string[]; size: number }];
  /** A client or a command was refused (network, policy, syntax, size, disk) */
  rejected: [DeviceEvent & { stage: RefusalStage; code: number; reason: string }];
}

function listen(server: LegacySMTPServer, port: number, host: string): Promise<AddressInfo> {
  return new Promise((resolve, reject) => {
    server.server.once('error', reject);
    server.listen(port, host, () => resolve(server.server.address() as AddressInfo));
  });
}

export class Intake extends EventEmitter<IntakeEvents> {
  private readonly servers: LegacySMTPServer[] = [];
  /** The implicit-TLS listener's address, when smtp.tls.port is set */
  tlsAddress: AddressInfo | undefined;
  private readonly sessions = new SessionWatch(this.servers);
  private sweeper: NodeJS.Timeout | undefined;
  /** The last sessions of each device, for troubleshooting from the admin page */
  readonly transcripts = new TranscriptLog();
  private settingsSource: Config | undefined;
  private advertised = 0;
  private readonly options: Required<IntakeOptions>;
  private readonly admission: Admission;
  private readonly envelope: EnvelopeChecks;

  constructor(options: IntakeOptions) {
    super();
    this.options = { ...options, upstreams: options.upstreams ?? NONE_KNOWN };
    this.admission = new Admission(options.config, this.sessions);
    this.envelope = new EnvelopeChecks(this.options, this.admission);
  }

  /** Starts the SMTP listener, and the implicit-TLS one when smtp.tls.port is set; returns the plain listener's address */
  async start(): Promise<AddressInfo> {
    const config = this.options.config();
    const tlsOptions = wantsTls(config) ? await this.tlsOptions(config) : undefined;
    const plain = this.createServer(
      config,
      config.smtp.tls.starttls ? tlsOptions : undefined,
      false,
    );
    this.servers.push(plain);
    const address = await listen(plain, config.smtp.port, config.smtp.host);
    if (tlsOptions && config.smtp.tls.port) {
      const secure = this.createServer(config, tlsOptions, true);
      this.servers.push(secure);
      this.tlsAddress = await listen(secure, config.smtp.tls.port, config.smtp.host);
    }
    this.sweeper = setInterval(() => this.sweep(), SWEEP_MS).unref();
    return address;
  }

  private async tlsOptions(config: Config): Promise<TlsServerOptions> {
    const { certFile, keyFile, profile } = config.smtp.tls;
    const pair = await loadOrCreateCertificate({
      dataDir: config.dataDir,
      name: 'smtp',
      certFile,
      keyFile,
      hostname: config.hostname,
      log: this.options.log,
    });
    return tlsServerOptions(profile, pair);
  }

  private createServer(
    config: Config,
    tls: TlsServerOptions | undefined,
    implicit: boolean,
  ): LegacySMTPServer {
    const server = new LegacySMTPServer(
      {
        ...tls,
        secure: implicit,
        ...settingLimits(config, advertisedSize(config, this.options.upstreams)),
        // smtp-server already puts "ESMTP" after the hostname
        banner: 'edge-relay ready',
        closeTimeout: CLOSE_GRACE_MS,
        authOptional: true,
        allowInsecureAuth: true,
        authMethods: ['PLAIN', 'LOGIN'],
        disabledCommands: tls && !implicit ? [] : ['STARTTLS'],
        hideENHANCEDSTATUSCODES: true,
        disableReverseLookup: true,
        logger: this.transcripts.sink,
        onConnect: (session, callback) => callback(this.onConnect(session)),
        onClose: (session) => this.onClose(session),
        onAuth: (auth, session, callback) => this.onAuth(auth, session, callback),
        onMailFrom: (address, session, callback) =>
          void this.envelope.mailFrom(address, session).then(
            () => {
              this.sessions.progressed(session.id);
              callback();
            },
            (err) => callback(this.refuse('mail', session, err)),
          ),
        onRcptTo: (address, session, callback) => {
          try {
            this.envelope.rcptTo(address, session);
            this.sessions.progressed(session.id);
            callback();
          } catch (err) {
            callback(this.refuse('rcpt', session, err));
          }
        },
        onData: (stream, session, callback) => {
          this.sessions.body(session.id, 'arriving');
          stream.once('end', () => this.sessions.body(session.id, 'in'));
          void queueMessage(stream, session, this.options, (queued) => this.emit('queued', queued))
            .finally(() => this.sessions.body(session.id, 'none'))
            .then(
              (id) => callback(null, `2.0.0 Ok: queued as ${id}`),
              (err) => callback(this.refuse('data', session, err)),
            );
        },
      },
      this.makeRoom,
    );
    server.on('error', (err) => {
      // A failed handshake on the implicit-TLS port has no session yet: its transcript line is made here
      this.transcripts.serverError(err);
      this.options.log.warn({ err: errorMessage(err) }, 'SMTP connection error');
    });
    return server;
  }

  /**
   * Stops accepting; open sessions get CLOSE_GRACE_MS to finish, then 421. A
   * client that never closes its end of the socket does not hold us longer.
   */
  async stop(): Promise<void> {
    clearInterval(this.sweeper);
    const closing = this.servers.map(
      (server) => new Promise<void>((resolve) => server.close(() => resolve())),
    );
    await Promise.race([
      Promise.all(closing),
      new Promise((resolve) => setTimeout(resolve, CLOSE_GRACE_MS + 500).unref()),
    ]);
  }

  private refuse(stage: RefusalStage, session: SMTPServerSession, err: unknown): Error {
    const relay = asRelayError(err);
    this.emit('rejected', {
      client: session.remoteAddress,
      helo: session.hostNameAppearsAs || '',
      at: new Date(),
      stage,
      code: relay.smtpCode,
      reason: relay.message,
    });
    return hookError(relay);
  }

  /** The smarthost's message size limit as its EHLO told it, for the dashboard */
  mainUpstreamLimit(): UpstreamLimit | undefined {
    return mainUpstreamLimit(this.options.config(), this.options.upstreams);
  }

  /**
   * smtp-server reads these from its options at each connection and command:
   * a settings change, or a size limit an upstream just told, is applied to
   * the running listeners, no restart needed
   */
  private applySettings(config: Config): void {
    const size = advertisedSize(config, this.options.upstreams);
    if (config === this.settingsSource && size === this.advertised) return;
    this.settingsSource = config;
    this.advertised = size;
    for (const server of this.servers) Object.assign(server.options, settingLimits(config, size));
  }

  private onConnect(session: SMTPServerSession): Error | undefined {
    this.applySettings(this.options.config());
    // One spelling per device from here on (limits, per-device rules, inventory, Received)
    session.remoteAddress = plainAddress(session.remoteAddress);
    const client = session.remoteAddress;
    this.transcripts.start(session.id, client);
    const refused = this.admission.refusal(client);
    if (refused) {
      this.options.log.warn(
        {
          session: session.id,
          client,
          reply: `${refused.smtpCode} ${refused.enhanced} ${refused.message}`,
        },
        'SMTP connection refused',
      );
      return this.refuse('connect', session, refused);
    }
    this.sessions.opened(session.id, client);
    return undefined;
  }

  /** A full listener makes room only for a newcomer it admits: an outsider, or a client at its limit, closes nobody's session */
  private readonly makeRoom: MakeRoom = (server, newcomer) =>
    !this.admission.refusal(plainAddress(newcomer.remoteAddress)) && this.sessions.makeRoom(server);

  private onClose(session: SMTPServerSession): void {
    this.transcripts.finish(session.id);
    this.sessions.closed(session.id);
  }

  /** Closes the sessions past their progress deadline; the log says what a full listener or a stalled session cost */
  private sweep(): void {
    this.applySettings(this.options.config());
    const { stalled, madeRoom } = this.sessions.sweep();
    if (stalled || madeRoom)
      this.options.log.warn(
        { stalled, madeRoom },
        'Closed SMTP sessions that moved no mail, to keep room for devices (NOOP/RSET do not count as progress)',
      );
  }

  /** Devices that insist on AUTH get it; any credentials pass, and nothing is required */
  private onAuth(
    auth: SMTPServerAuthentication,
    session: SMTPServerSession,
    callback: (err: Error | null | undefined, response?: { user: string }) => void,
  ): void {
    this.options.log.debug(
      { session: session.id, method: auth.method, user: auth.username },
      'Device authenticated (any credentials are accepted)',
    );
    callback(null, { user: auth.username || 'device' });
  }
}

/** The listener options that follow the settings while running; `size` is what EHLO advertises (size-limits.ts) */
function settingLimits(config: Config, size: number) {
  return {
    name: config.hostname,
    size,
    maxRecipients: config.smtp.maxRecipients,
    maxClients: config.smtp.maxConnections,
    socketTimeout: parseDuration(config.smtp.idleTimeout) ?? 300_000,
  };
}
