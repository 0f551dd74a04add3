/**
 * The queue's side of pacing: which upstream a delivery goes to and what
 * limits it has under the settings, whether a due message may start now,
 * what it counted, and a provider's "slow down". The runner asks it before
 * starting an attempt; the dashboard and the alerts read its status.
 *
 * The day limit is gated with the real recipient count of the oldest due
 * message to the upstream, so the cap is never overshot; a message with more
 * recipients than a whole day allows goes once the day's count is empty (see
 * pacing.ts) rather than never. The oldest message waits first: later ones to
 * the same upstream do not overtake it.
 */
import type { Config } from '../config/schema.js';
import type { Deferred, RecipientOutcome } from '../deliver/outcome.js';
import type { Logger } from '../log.js';
import { destinationKey, type Destination, type RouteGroup } from '../route/router.js';
import { delayAfter, retryPolicy } from './backoff.js';
import type { HoldReason, PaceLimits } from './pacing.js';
import type { PacingFile } from './pacing-file.js';

/**
 * How long an upstream rests after a throttling reply that named no wait
 * (SMTP replies never do): the second retry delay (delivery.retry.delays,
 * 5 minutes by default). Being told to slow down is more than one failure,
 * and the first retry delay would knock again within the minute.
 */
const restAfterThrottling = (config: Config): number => delayAfter(2, retryPolicy(config));

const NO_LIMITS: PaceLimits = { messagesPerMinute: 0, recipientsPerDay: 0 };

/** Mail held back from an upstream, and why */
export interface Hold {
  until: number;
  reason: HoldReason;
  /** For people: "30 a minute reached" */
  text: string;
}

/** One paced upstream as the dashboard, the API and the alerts see it */
export interface UpstreamPace {
  /** The destination key ('smarthost:host:port', 'graph', 'host:h:p:tls') */
  upstream: string;
  /** For people: "smtp.office365.com:587", "Microsoft Graph" */
  label: string;
  /** Recipients sent in the last 24 hours */
  sentToday: number;
  /** 0: no daily limit */
  dayLimit: number;
  messagesPerMinute: number;
  /** The provider asked us to wait until then */
  pausedUntil?: number;
  /** Mail is being held back until then */
  held?: Hold;
}

export class PacingGate {
  private readonly holds = new Map<string, Hold>();

  constructor(
    private readonly file: PacingFile,
    private readonly config: () => Config,
    private readonly log: Logger,
  ) {}

  private get pacer() {
    return this.file.pacer;
  }

  /** Until when the message routed as `groups` must wait, or undefined when it may start now */
  holdFor(groups: readonly RouteGroup[], now: number): Hold | undefined {
    for (const group of groups) {
      const key = destinationKey(group.destination);
      const limits = this.limitsOf(group.destination, key, now);
      if (!limits) continue;
      const decision = this.pacer.check(key, limits, group.recipients.length, now);
      if (decision.go) continue;
      const hold = {
        until: decision.until,
        reason: decision.reason,
        text: holdText(decision.reason, limits),
      };
      if (this.holds.get(key)?.until !== hold.until)
        this.log.info(
          { upstream: key, until: new Date(hold.until).toISOString(), reason: hold.reason },
          `Holding mail to ${labelOf(key)}: ${hold.text}`,
        );
      this.holds.set(key, hold);
      return hold;
    }
    return undefined;
  }

  /** Why mail routed as `groups` is held back now, for people; undefined when it is not */
  heldText(groups: readonly RouteGroup[], now: number): string | undefined {
    for (const group of groups) {
      const key = destinationKey(group.destination);
      const hold = this.holds.get(key);
      if (hold && hold.until > now)
        return `Held back: ${labelOf(key)}: ${hold.text}; goes at ${new Date(hold.until).toISOString()}`;
    }
    return undefined;
  }

  /** An attempt starts: its recipients count now (the provider counts a refused message too) */
  started(groups: readonly RouteGroup[], now: number): void {
    for (const group of groups) {
      const key = destinationKey(group.destination);
      if (!this.limitsOf(group.destination, key, now)) continue;
      this.holds.delete(key);
      this.pacer.record(key, group.recipients.length, now);
      this.file.changed();
    }
  }

  /** The upstream of `group` asked us to slow down: nothing goes to it for the time it asked, or a default rest */
  answered(group: RouteGroup, outcomes: readonly RecipientOutcome[], now: number): void {
    const throttled = outcomes
      .map(({ outcome }) => outcome)
      .find(
        (outcome): outcome is Deferred =>
          outcome.status === 'deferred' && outcome.throttled === true,
      );
    if (!throttled || group.destination.kind === 'local') return;
    const key = destinationKey(group.destination);
    const until = now + (throttled.retryAfterMs ?? restAfterThrottling(this.config()));
    this.pacer.throttle(key, until, now);
    this.file.changed();
    this.log.warn(
      { upstream: key, until: new Date(until).toISOString(), reason: throttled.reason },
      `${labelOf(key)} asked us to slow down: nothing goes to it until ${new Date(until).toISOString()}`,
    );
  }

  /** Every upstream with limits under the settings, or paused by its provider */
  status(now: number): UpstreamPace[] {
    const paced = pacedUpstreams(this.config());
    const keys = new Set([
      ...paced.keys(),
      ...this.pacer.upstreams().filter((key) => this.pacer.pausedUntil(key, now)),
    ]);
    return [...keys].map((upstream) => {
      const limits = paced.get(upstream) ?? NO_LIMITS;
      const usage = this.pacer.usage(upstream, limits, now);
      const held = this.holds.get(upstream);
      return {
        upstream,
        label: labelOf(upstream),
        sentToday: usage.sentToday,
        dayLimit: usage.dayLimit,
        messagesPerMinute: limits.messagesPerMinute,
        ...(usage.pausedUntil && { pausedUntil: usage.pausedUntil }),
        ...(held && held.until > now && { held }),
      };
    });
  }

  close(): Promise<void> {
    return this.file.close();
  }

  /** The limits for a destination; undefined when it is not paced and its provider has not paused it */
  private limitsOf(destination: Destination, key: string, now: number): PaceLimits | undefined {
    const limits = limitsFor(destination, this.config());
    if (limits) return limits;
    return this.pacer.pausedUntil(key, now) ? NO_LIMITS : undefined;
  }
}

const hasLimits = (limits: PaceLimits | undefined): limits is PaceLimits =>
  !!limits && (limits.messagesPerMinute > 0 || limits.recipientsPerDay > 0);

/**
 * The limits of the upstream a destination is: delivery.pacing for the
 * smarthost and Graph; a domain's own `pacing` for its route "host". A
 * domain routed to the smarthost shares the smarthost's account, so its
 * mail counts toward the smarthost's limits.
 */
export function limitsFor(destination: Destination, config: Config): PaceLimits | undefined {
  switch (destination.kind) {
    case 'smarthost':
    case 'graph':
      return hasLimits(config.delivery.pacing) ? config.delivery.pacing : undefined;
    case 'host':
      return pacedUpstreams(config).get(destinationKey(destination));
    default:
      return undefined;
  }
}

/** Every upstream the settings give limits, by destination key */
function pacedUpstreams(config: Config): Map<string, PaceLimits> {
  const { delivery } = config;
  const paced = new Map<string, PaceLimits>();
  const usesSmarthost =
    delivery.mode === 'smarthost' ||
    Object.values(delivery.domains).some((d) => d.route === 'smarthost');
  if (hasLimits(delivery.pacing) && delivery.mode === 'graph') paced.set('graph', delivery.pacing);
  if (hasLimits(delivery.pacing) && usesSmarthost && delivery.smarthost.host)
    paced.set(
      destinationKey({
        kind: 'smarthost',
        host: delivery.smarthost.host,
        port: delivery.smarthost.port,
      }),
      delivery.pacing,
    );
  for (const domain of Object.values(delivery.domains)) {
    if (domain.route !== 'host' || !domain.host || !hasLimits(domain.pacing)) continue;
    const key = destinationKey({
      kind: 'host',
      host: domain.host,
      port: domain.port ?? delivery.mx.port,
      tls: domain.tls ?? delivery.mx.tls,
    });
    if (!paced.has(key)) paced.set(key, domain.pacing);
  }
  return paced;
}

/** "smtp.office365.com:587" for 'smarthost:smtp.office365.com:587' */
export function labelOf(upstream: string): string {
  if (upstream === 'graph') return 'Microsoft Graph';
  const [kind, ...rest] = upstream.split(':');
  if (kind === 'smarthost') return rest.join(':');
  if (kind === 'host') return rest.slice(0, -1).join(':');
  if (kind === 'mx') return `the MX hosts of ${rest.slice(0, -1).join(':')}`;
  return upstream;
}

/** "30 a minute reached", "the provider asked us to slow down" */
function holdText(reason: HoldReason, limits: PaceLimits): string {
  switch (reason) {
    case 'minute':
      return `${limits.messagesPerMinute} a minute reached`;
    case 'day':
      return `${limits.recipientsPerDay} recipients a day reached`;
    case 'throttled':
      return 'the provider asked us to slow down';
  }
}
