import { createEvent, topics, type ApiHealthData } from '@switchyard/events';
import type { EventProducer } from '@switchyard/kafka';
import type { Logger, Registry } from '@switchyard/service-runtime';
import { Counter, Gauge, Histogram } from 'prom-client';
import type { Dispatcher } from 'undici';
import { HealthMonitorError } from './errors.js';
import { decideHealth, initialHealth, type ApiHealthState, type HealthPolicy } from './health.js';
import { probe } from './probe.js';

export interface HealthTarget {
  readonly api: string;
  readonly url: string;
}

export interface HealthMonitorDeps {
  readonly targets: readonly HealthTarget[];
  readonly dispatcher: Dispatcher;
  readonly producer: Pick<EventProducer, 'send'>;
  readonly policy: HealthPolicy;
  readonly intervalMs: number;
  readonly timeoutMs: number;
  readonly logger: Logger;
  readonly registry: Registry;
  readonly now?: () => Date;
}

interface TargetState {
  readonly target: HealthTarget;
  health: ApiHealthState;
  /** The latest change not yet acknowledged by Kafka; re-sent on the next round. */
  unpublished: ApiHealthData | undefined;
  lastCheckedAt: Date | null;
}

const STATUSES = ['up', 'degraded', 'down'] as const;

/**
 * Probes every target once per interval (rounds never overlap) and publishes a health event whenever a target's
 * status changes — including the first status it gets after start.
 */
export class HealthMonitor {
  private readonly deps: HealthMonitorDeps;
  private readonly states = new Map<string, TargetState>();
  private readonly now: () => Date;
  private timer: NodeJS.Timeout | undefined;
  private round: Promise<void> | undefined;
  private stopped = false;
  private readonly statusGauge: Gauge<'api' | 'status'>;
  private readonly probeLatency: Histogram<'api'>;
  private readonly probes: Counter<'api' | 'outcome'>;

  constructor(deps: HealthMonitorDeps) {
    this.deps = deps;
    this.now = deps.now ?? (() => new Date());
    for (const target of deps.targets) {
      this.states.set(target.api, { target, health: initialHealth, unpublished: undefined, lastCheckedAt: null });
    }
    this.statusGauge = new Gauge({
      name: 'switchyard_api_health_status',
      help: '1 for the status each API is in, 0 for the others',
      labelNames: ['api', 'status'],
      registers: [deps.registry],
    });
    this.probeLatency = new Histogram({
      name: 'switchyard_api_probe_duration_seconds',
      help: 'Latency of health probes that got an HTTP answer',
      labelNames: ['api'],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers: [deps.registry],
    });
    this.probes = new Counter({
      name: 'switchyard_api_probes_total',
      help: 'Health probes by outcome (ok, or the failure reason)',
      labelNames: ['api', 'outcome'],
      registers: [deps.registry],
    });
  }

  start(): void {
    const loop = async () => {
      if (this.stopped) return;
      this.round = this.probeAll();
      await this.round;
      if (!this.stopped) this.timer = setTimeout(() => void loop(), this.deps.intervalMs);
    };
    void loop();
  }

  /** Stops scheduling and waits for a round in progress to finish publishing. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.round;
  }

  /** One probe of every target, then one produce request for every change. */
  async probeAll(): Promise<void> {
    const changes: ApiHealthData[] = [];
    await Promise.all(
      [...this.states.values()].map(async (state) => {
        const { target } = state;
        const outcome = await probe(this.deps.dispatcher, target.url, this.deps.timeoutMs);
        const now = this.now();
        const decided = decideHealth(target.api, state.health, outcome, this.deps.policy, now);
        state.health = decided.state;
        state.lastCheckedAt = now;
        if (decided.change) state.unpublished = decided.change;
        if (state.unpublished) changes.push(state.unpublished);
        this.probes.inc({ api: target.api, outcome: outcome.kind === 'ok' ? 'ok' : outcome.reason });
        if (outcome.latencyMs !== null) this.probeLatency.observe({ api: target.api }, outcome.latencyMs / 1000);
        for (const status of STATUSES) {
          this.statusGauge.set({ api: target.api, status }, decided.state.status === status ? 1 : 0);
        }
      }),
    );
    if (changes.length === 0) return;
    try {
      await this.deps.producer.send(
        topics.apiHealth,
        changes.map((data) =>
          createEvent({
            type: 'switchyard.api.health_changed',
            source: 'switchyard/health-monitor',
            subject: data.api,
            time: new Date(data.checkedAt),
            data,
          }),
        ),
      );
      for (const data of changes) {
        const state = this.states.get(data.api);
        if (state?.unpublished === data) state.unpublished = undefined;
        this.deps.logger.info({ api: data.api, status: data.status, previous: data.previous, reason: data.reason }, 'api health changed');
      }
    } catch (cause) {
      const error = new HealthMonitorError('HM_PUBLISH_FAILED', `could not publish ${changes.length} health change(s)`, {
        cause,
      });
      this.deps.logger.warn({ err: error }, error.message);
    }
  }

  /** Current status of every target, for GET /v1/health. */
  snapshot(): Record<string, { status: string; since: string | null; consecutiveFailures: number; lastCheckedAt: string | null }> {
    const out: Record<string, { status: string; since: string | null; consecutiveFailures: number; lastCheckedAt: string | null }> = {};
    for (const [api, state] of this.states) {
      out[api] = {
        status: state.health.status,
        since: state.health.since?.toISOString() ?? null,
        consecutiveFailures: state.health.consecutiveFailures,
        lastCheckedAt: state.lastCheckedAt?.toISOString() ?? null,
      };
    }
    return out;
  }
}
