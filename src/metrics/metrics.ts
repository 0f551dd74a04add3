/**
 * Prometheus metrics on a registry of our own (no global state). Counters
 * are fed by intake and runner events; queue depth is read from the spool
 * when scraped, so it is never stale.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { Outcome } from '../deliver/outcome.js';
import type { AttemptReport } from '../queue/runner.js';
import type { Spool } from '../spool/spool.js';
import type { HealthSnapshot } from '../alerts/upstream-health.js';
import type { Pop3LoginResult } from '../pop3/session.js';
import type { UpstreamPace } from '../queue/pacing-gate.js';

const POP3_RESULTS: readonly Pop3LoginResult[] = ['ok', 'failed', 'in_use', 'throttled'];

/** A bounded label for a failure: the SMTP reply code when there is one, else "other" */
export function reasonOf(outcome: Outcome): string {
  if (outcome.status === 'delivered' || outcome.status === 'local') return 'ok';
  return /\b([245]\d\d)\b/.exec(outcome.reason)?.[1] ?? 'other';
}

export type QueueCounts = Record<'queued' | 'deferred' | 'held', number>;

export async function queueCounts(spool: Spool): Promise<QueueCounts> {
  const counts: QueueCounts = { queued: 0, deferred: 0, held: 0 };
  for (const entry of await spool.list()) {
    if (entry.state.held) counts.held++;
    else if (entry.state.attempts === 0) counts.queued++;
    else counts.deferred++;
  }
  return counts;
}

const EVENT_LOOP_SAMPLE_MS = 500;

export class RelayMetrics {
  readonly registry = new Registry();
  private readonly accepted = new Counter({
    name: 'edge_relay_messages_accepted_total',
    help: 'Messages accepted from devices',
    registers: [this.registry],
  });
  private readonly rejected = new Counter({
    name: 'edge_relay_messages_rejected_total',
    help: 'SMTP commands refused, by stage and reply code',
    labelNames: ['stage', 'code'],
    registers: [this.registry],
  });
  private readonly recipients = new Counter({
    name: 'edge_relay_recipients_total',
    help: 'Delivery results per recipient, by status (delivered, local, deferred, bounced) and reason (reply code)',
    labelNames: ['status', 'reason'],
    registers: [this.registry],
  });
  private readonly latency = new Histogram({
    name: 'edge_relay_delivery_duration_seconds',
    help: 'How long one delivery attempt took',
    buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120],
    registers: [this.registry],
  });
  private readonly upstreamErrors = new Counter({
    name: 'edge_relay_upstream_errors_total',
    help: 'Failed deliveries or probes to the upstream',
    registers: [this.registry],
  });
  private readonly pop3Logins = new Counter({
    name: 'edge_relay_pop3_logins_total',
    help: 'POP3 logins, by result (ok, failed, in_use, throttled: refused unchecked after too many failures)',
    labelNames: ['result'],
    registers: [this.registry],
  });

  constructor(spool: Spool, health: () => HealthSnapshot, paced: () => UpstreamPace[]) {
    // The event-loop lag sampler wakes the process at this interval: 10 ms (the default) is 100 wake-ups a second on an idle box
    collectDefaultMetrics({
      register: this.registry,
      prefix: 'edge_relay_',
      eventLoopMonitoringPrecision: EVENT_LOOP_SAMPLE_MS,
    });
    // Every result shows from the start, so a rate() over "failed" works before the first failure
    for (const result of POP3_RESULTS) this.pop3Logins.inc({ result }, 0);
    new Gauge({
      name: 'edge_relay_queue_messages',
      help: 'Messages waiting in the queue, by state',
      labelNames: ['state'],
      registers: [this.registry],
      async collect() {
        for (const [state, count] of Object.entries(await queueCounts(spool)))
          this.set({ state }, count);
      },
    });
    new Gauge({
      name: 'edge_relay_upstream_up',
      help: '1 when the last contact with the upstream worked, 0 when it failed, -1 when unknown or not configured',
      registers: [this.registry],
      collect() {
        const { reachability } = health();
        this.set(reachability === 'reachable' ? 1 : reachability === 'failing' ? 0 : -1);
      },
    });
    this.pacingGauges(paced);
  }

  /** Gauges per paced upstream, read when scraped; an upstream no longer paced disappears */
  private pacingGauges(paced: () => UpstreamPace[]): void {
    const perUpstream = (
      name: string,
      help: string,
      value: (pace: UpstreamPace, now: number) => number,
    ) =>
      new Gauge({
        name,
        help,
        labelNames: ['upstream'],
        registers: [this.registry],
        collect() {
          this.reset();
          const now = Date.now();
          for (const pace of paced()) this.set({ upstream: pace.label }, value(pace, now));
        },
      });
    perUpstream(
      'edge_relay_upstream_recipients_24h',
      'Recipients sent to a paced upstream in the last 24 hours',
      (pace) => pace.sentToday,
    );
    perUpstream(
      'edge_relay_upstream_recipients_per_day_limit',
      'The daily recipient limit set for the upstream (0: none)',
      (pace) => pace.dayLimit,
    );
    perUpstream(
      'edge_relay_upstream_holding',
      '1 while mail to the upstream is held back (its limits reached, or its provider asked us to wait), else 0',
      (pace, now) => Number((pace.held?.until ?? 0) > now || (pace.pausedUntil ?? 0) > now),
    );
  }

  messageAccepted(): void {
    this.accepted.inc();
  }

  messageRejected(stage: string, code: number): void {
    this.rejected.inc({ stage, code: String(code) });
  }

  attempt(report: AttemptReport): void {
    this.latency.observe(report.durationMs / 1000);
    for (const { outcome } of report.outcomes)
      this.recipients.inc({ status: outcome.status, reason: reasonOf(outcome) });
  }

  upstreamError(): void {
    this.upstreamErrors.inc();
  }

  pop3Login(result: Pop3LoginResult): void {
    this.pop3Logins.inc({ result });
  }

  async text(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}
