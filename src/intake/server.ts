/**
 * SMTP intake: smtp-server wired to our policies and the spool. The hooks
 * decide; the spool stores; the 250 after DATA is sent only once the spool
 * says the message is durable.
 */
import { EventEmitter } from 'node:events';
import type { AddressInfo } from 'node:net';
import type { Readable } from 'node:stream';
import type { SMTPServerAddress, SMTPServerAuthentication, SMTPServerDataStream, SMTPServerSession } from 'smtp-server';
import type { Config } from '../config/schema.js';
import { RelayError, errorMessage, smtpReject } from '../errors.js';
import type { Logger } from '../log.js';
import { isLocalDomain } from '../route/router.js';
import { mailboxName, parseAddress } from '../route/address.js';
import { newQueueId } from '../spool/ids.js';
import { plainAddress } from '../util/ip.js';
import { storageError, type Spool } from '../spool/spool.js';
import { parseDuration } from '../util/duration.js';
import { loadOrCreateCertificate } from '../util/tls-cert.js';
import { LegacySMTPServer, type MakeRoom } from './legacy-server.js';
import { copyRecipients } from './copies.js';
import { ClientLimits } from './limits.js';
import { MessageFixer } from './message-fixer.js';
import { NetworkPolicy } from './policy.js';
import { SessionWatch } from './sessions.js';
import { TranscriptLog } from './transcripts.js';
import { tlsServerOptions, wantsTls, type TlsServerOptions } from './tls.js';
import { missingHeaders, receivedHeader } from './received.js';
import { advertisedSize, declaredSize, messageRule, ownRule, recipientRule, mainUpstreamLimit, type UpstreamSizes } from './size-limits.js';
import type { UpstreamLimit } from '../deliver/upstream-limits.js';

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

/** Keep a little room so the spool's own records can still be written when the disk is nearly full */
const MIN_FREE_BYTES = 1024 * 1024;

/** How long a session in progress may take to finish when we stop (the relay must exit within 10 s of SIGTERM, docs/development.md, Commands) */
const CLOSE_GRACE_MS = 5_000;

/** How often sessions are checked against their progress deadline */
const SWEEP_MS = 1_000;

const asRelayError = (err: unknown): RelayError => (err instanceof RelayError ? err : storageError(err));

/** smtp-server sends err.message as the reply text; ours carries its enhanced status code */
function hookError(relay: RelayError): Error {
  return Object.assign(new Error(`${relay.enhanced} ${relay.message}`), { responseCode: relay.smtpCode });
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
  private policy: NetworkPolicy;
  private readonly limits = new ClientLimits();
  private readonly sessions = new SessionWatch(this.servers);
  private sweeper: NodeJS.Timeout | undefined;
  /** The last sessions of each device, for troubleshooting from the admin page */
  readonly transcripts = new TranscriptLog();
  private policySource: readonly string[];
  private settingsSource: Config | undefined;
  private advertised = 0;
  private readonly upstreams: UpstreamSizes;

  constructor(private readonly options: IntakeOptions) {
    super();
    this.policySource = options.config().smtp.allowNetworks;
    this.policy = new NetworkPolicy(this.policySource);
    this.upstreams = options.upstreams ?? NONE_KNOWN;
  }

  /** Starts the SMTP listener, and the implicit-TLS one when smtp.tls.port is set; returns the plain listener's address */
  async start(): Promise<AddressInfo> {
    const config = this.options.config();
    const tlsOptions = wantsTls(config) ? await this.tlsOptions(config) : undefined;
    const plain = this.createServer(config, config.smtp.tls.starttls ? tlsOptions : undefined, false);
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
    const pair = await loadOrCreateCertificate({ dataDir: config.dataDir, name: 'smtp', certFile, keyFile, hostname: config.hostname, log: this.options.log });
    return tlsServerOptions(profile, pair);
  }

  private createServer(config: Config, tls: TlsServerOptions | undefined, implicit: boolean): LegacySMTPServer {
    const server = new LegacySMTPServer(
      {
        ...tls,
        secure: implicit,
        ...settingLimits(config, advertisedSize(config, this.upstreams)),
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
        onMailFrom: (address, session, callback) => void this.onMailFrom(address, session).then(() => callback(), (err) => callback(this.refuse('mail', session, err))),
        onRcptTo: (address, session, callback) => {
          try {
            this.onRcptTo(address, session);
            callback();
          } catch (err) {
            callback(this.refuse('rcpt', session, err));
          }
        },
        onData: (stream, session, callback) => {
          this.sessions.body(session.id, 'arriving');
          stream.once('end', () => this.sessions.body(session.id, 'in'));
          void this.onData(stream, session)
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
    const closing = this.servers.map((server) => new Promise<void>((resolve) => server.close(() => resolve())));
    await Promise.race([Promise.all(closing), new Promise((resolve) => setTimeout(resolve, CLOSE_GRACE_MS + 500).unref())]);
  }

  private refuse(stage: RefusalStage, session: SMTPServerSession, err: unknown): Error {
    const relay = asRelayError(err);
    this.emit('rejected', { client: session.remoteAddress, helo: session.hostNameAppearsAs || '', at: new Date(), stage, code: relay.smtpCode, reason: relay.message });
    return hookError(relay);
  }

  /** The smarthost's message size limit as its EHLO told it, for the dashboard */
  mainUpstreamLimit(): UpstreamLimit | undefined {
    return mainUpstreamLimit(this.options.config(), this.upstreams);
  }

  private currentPolicy(): NetworkPolicy {
    const networks = this.options.config().smtp.allowNetworks;
    if (networks !== this.policySource) {
      this.policySource = networks;
      this.policy = new NetworkPolicy(networks);
    }
    return this.policy;
  }

  /**
   * smtp-server reads these from its options at each connection and command:
   * a settings change, or a size limit an upstream just told, is applied to
   * the running listeners, no restart needed
   */
  private applySettings(config: Config): void {
    const size = advertisedSize(config, this.upstreams);
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
    const refused = this.admission(client);
    if (refused) {
      this.options.log.warn({ session: session.id, client, reply: `${refused.smtpCode} ${refused.enhanced} ${refused.message}` }, 'SMTP connection refused');
      return this.refuse('connect', session, refused);
    }
    this.sessions.opened(session.id, client);
    return undefined;
  }

  /** Why a new connection from `client` is refused: outside smtp.allowNetworks, or over its connection limit */
  private admission(client: string): RelayError | undefined {
    if (!this.currentPolicy().allows(client)) return smtpReject(554, '5.7.1', `Access denied: client ${client} is not in the allowed networks of this relay`);
    const { maxConnectionsPerClient } = this.options.config().smtp;
    if (this.sessions.connectionsFrom(client) >= maxConnectionsPerClient) return smtpReject(421, '4.7.0', `Too many connections from ${client} (limit ${maxConnectionsPerClient}), try again later`);
    return undefined;
  }

  /** A full listener makes room only for a newcomer it admits: an outsider, or a client at its limit, closes nobody's session */
  private readonly makeRoom: MakeRoom = (server, newcomer) => !this.admission(plainAddress(newcomer.remoteAddress)) && this.sessions.makeRoom(server);

  private onClose(session: SMTPServerSession): void {
    this.transcripts.finish(session.id);
    this.sessions.closed(session.id);
  }

  /** Closes the sessions past their progress deadline; the log says what a full listener or a stalled session cost */
  private sweep(): void {
    this.applySettings(this.options.config());
    const { stalled, madeRoom } = this.sessions.sweep();
    if (stalled || madeRoom) this.options.log.warn({ stalled, madeRoom }, 'Closed SMTP sessions that moved no mail, to keep room for devices (NOOP/RSET do not count as progress)');
  }

  /** Devices that insist on AUTH get it; any credentials pass, and nothing is required */
  private onAuth(auth: SMTPServerAuthentication, session: SMTPServerSession, callback: (err: Error | null | undefined, response?: { user: string }) => void): void {
    this.options.log.debug({ session: session.id, method: auth.method, user: auth.username }, 'Device authenticated (any credentials are accepted)');
    callback(null, { user: auth.username || 'device' });
  }

  private async onMailFrom(address: SMTPServerAddress, session: SMTPServerSession): Promise<void> {
    if (address.address && !parseAddress(address.address)) throw smtpReject(553, '5.1.7', `Bad sender address syntax "${address.address}"`);
    const config = this.options.config();
    const { smtp } = config;
    const declared = declaredSize(address);
    const own = ownRule(config);
    if (declared > own.bytes) throw own.refusal(declared);
    const maxMessagesPerMinute = smtp.devices[session.remoteAddress]?.maxMessagesPerMinute ?? smtp.maxMessagesPerMinute;
    const now = Date.now();
    this.limits.prune(now);
    if (!this.limits.takeMessage(session.remoteAddress, maxMessagesPerMinute, now)) {
      throw smtpReject(450, '4.7.1', `Too many messages from ${session.remoteAddress} (limit ${maxMessagesPerMinute} a minute), try again shortly`);
    }
    const free = await this.options.spool.freeBytes();
    if (free < MIN_FREE_BYTES + declared) {
      this.options.log.error({ session: session.id, free, declared }, 'Refusing mail: the data disk is full');
      throw smtpReject(452, '4.3.1', 'Insufficient system storage, try again later');
    }
    this.sessions.progressed(session.id);
  }

  private onRcptTo(address: SMTPServerAddress, session: SMTPServerSession): void {
    const config = this.options.config();
    const client = session.remoteAddress;
    if (!this.currentPolicy().allows(client)) {
      this.options.log.warn({ session: session.id, client, rcpt: address.address }, 'Refused a client outside smtp.allowNetworks');
      throw smtpReject(554, '5.7.1', `Relay access denied: client ${client} is not in the allowed networks`);
    }
    const parsed = parseAddress(address.address);
    if (!parsed) throw smtpReject(553, '5.1.3', `Bad recipient address syntax "${address.address}"`);
    if (parsed.domain.startsWith('[')) throw smtpReject(553, '5.1.3', 'Address literals are not accepted as recipients');
    const allowed = config.smtp.devices[client]?.allowDomains;
    if (allowed && !isLocalDomain(parsed.domain, config) && !allowed.some((d) => d.toLowerCase() === parsed.domain)) {
      throw smtpReject(550, '5.7.1', `This device may only send to ${allowed.join(', ')}`);
    }
    if (isLocalDomain(parsed.domain, config) && !this.options.mailboxes.exists(mailboxName(parsed.local))) {
      throw smtpReject(550, '5.1.1', `No such mailbox here: ${address.address}`);
    }
    // A declared size too large for the upstream this recipient's mail goes to: refused for this recipient only
    const declared = declaredSize(session.envelope.mailFrom);
    const rule = recipientRule(address.address, config, this.upstreams);
    if (declared > rule.bytes) throw rule.refusal(declared);
    this.sessions.progressed(session.id);
  }

  private async onData(stream: SMTPServerDataStream, session: SMTPServerSession): Promise<string> {
    const config = this.options.config();
    const now = new Date();
    const id = newQueueId(now.getTime());
    const helo = session.hostNameAppearsAs || '';
    const from = session.envelope.mailFrom ? session.envelope.mailFrom.address : '';
    const given = session.envelope.rcptTo.map((r) => r.address);
    const recipients = [...given, ...copyRecipients(config, { from, client: session.remoteAddress, recipients: given }, (name) => this.options.mailboxes.exists(name))];
    const fixer = new MessageFixer({
      limit: messageRule(recipients, config, this.upstreams),
      prepend: receivedHeader({
        helo,
        clientAddress: session.remoteAddress,
        byHost: config.hostname,
        protocol: session.transmissionType || 'SMTP',
        queueId: id,
        recipients,
        date: now,
      }),
      missing: (has) => missingHeaders(has, id, config.hostname, now),
    });
    const log = this.options.log.child({ queueId: id, session: session.id });
    try {
      const { size } = await this.options.spool.accept({ id, from, to: recipients, client: { address: session.remoteAddress, helo } }, stream as Readable, [fixer], now);
      log.info({ from, to: recipients, client: session.remoteAddress, helo, size }, 'Message queued');
      this.emit('queued', { id, client: session.remoteAddress, helo, at: now, from, to: recipients, size });
      return id;
    } catch (err) {
      log.warn({ client: session.remoteAddress, err: errorMessage(err) }, 'Message not accepted');
      throw err;
    }
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
