import { createEvent, isSwitchyardError, topics, type ProjectionPositionData, type TopicEventInput } from '@switchyard/events';
import type { EventProducer, KafkaLogger } from '@switchyard/kafka';
import type { Registry } from '@switchyard/service-runtime';
import { Counter } from 'prom-client';
import { backoffMs, type RetryPolicy } from './retry.js';

/** A position as `sync_offsets` holds it once its transaction committed: everything below `nextOffset` is applied. */
export type CommittedPosition = ProjectionPositionData;

export interface PositionPublisherOptions {
  readonly producer: Pick<EventProducer, 'send'>;
  readonly logger: KafkaLogger;
  readonly registry: Registry;
  /** Backoff between attempts while Kafka refuses the positions. */
  readonly retry: RetryPolicy;
}

type PositionEvent = TopicEventInput<typeof topics.projectionPositions>;

interface Waiting {
  readonly position: CommittedPosition;
  /** Built when the position committed, so its `time` says when that was. */
  readonly event: PositionEvent;
}

/**
 * Publishes committed positions on the compacted projection-positions topic, so that a service that produced an
 * event can learn through Kafka when it is visible in Postgres (docs/projections.md#committed-positions-on-kafka).
 *
 * `publish` is called right after a transaction committed and returns at once: the commit path never waits for
 * Kafka. One produce is in flight at a time; positions committed meanwhile wait, and a newer position of the same
 * partition replaces the waiting one (only the latest matters), so the next produce carries at most one position
 * per partition. A failed produce changes nothing for projecting: it is logged once per failure streak, counted,
 * and the latest positions are tried again after a backoff.
 */
export class PositionPublisher {
  private readonly options: PositionPublisherOptions;
  /** The latest position of each partition not yet on Kafka, by the topic's key. */
  private readonly pending = new Map<string, Waiting>();
  private running = false;
  private retryTimer: NodeJS.Timeout | undefined;
  private failedAttempts = 0;
  private stopped = false;
  private held: (position: CommittedPosition) => boolean = () => true;
  private readonly idleWaiters: (() => void)[] = [];
  private readonly published: Counter<'projection'>;
  private readonly failures: Counter;

  constructor(options: PositionPublisherOptions) {
    this.options = options;
    const registers = [options.registry];
    this.published = new Counter({
      name: 'switchyard_sync_positions_published_total',
      help: 'Committed positions published on the projection-positions topic',
      labelNames: ['projection'],
      registers,
    });
    this.failures = new Counter({
      name: 'switchyard_sync_position_publish_failures_total',
      help: 'Produce requests of committed positions that failed (the latest positions are published again later)',
      registers,
    });
  }

  /** Queues a committed position for publishing; never waits. Call it only after the position's transaction committed. */
  publish(position: CommittedPosition): void {
    if (this.stopped) return;
    const event = createEvent({ type: 'switchyard.projection.position_committed', source: 'switchyard/sync-worker', data: position });
    const key = topics.projectionPositions.keyOf(event);
    this.pending.set(key, { position, event: { ...event, subject: key } });
    this.kick();
  }

  /**
   * Keeps waiting (and failed) positions only for partitions `held` accepts: after a rebalance, another member
   * owns the rest and publishes them itself, and a position of ours arriving after its newer ones would only
   * hold readers back.
   */
  retainOnly(held: (position: CommittedPosition) => boolean): void {
    this.held = held;
    for (const [key, { position }] of this.pending) if (!held(position)) this.pending.delete(key);
  }

  /**
   * Publishes what is waiting, trying at once even during a backoff, and resolves true once it is on Kafka, or
   * false after `timeoutMs`. Positions committed after that are dropped: whoever next takes a partition publishes
   * its stored position on its first batch.
   */
  async stop(timeoutMs: number): Promise<boolean> {
    if (this.retryTimer !== undefined) {
      clearTimeout(this.retryTimer);
      this.retryTimer = undefined;
    }
    this.kick();
    let timer: NodeJS.Timeout | undefined;
    const flushed = await Promise.race([
      this.idle(),
      new Promise<false>((resolve) => {
        timer = setTimeout(() => resolve(false), timeoutMs);
      }),
    ]);
    clearTimeout(timer);
    this.stopped = true;
    clearTimeout(this.retryTimer);
    if (!flushed) this.options.logger.warn({ unpublished: this.pending.size, timeoutMs }, 'committed positions not published before stopping');
    this.pending.clear();
    return flushed;
  }

  private idle(): Promise<true> {
    if (!this.running && this.pending.size === 0) return Promise.resolve(true);
    return new Promise((resolve) => this.idleWaiters.push(() => resolve(true)));
  }

  private kick(): void {
    if (this.running || this.retryTimer !== undefined || this.pending.size === 0) return;
    this.running = true;
    void this.drain();
  }

  /** Sends until nothing waits, or until an attempt fails (then a retry is scheduled). Never rejects. */
  private async drain(): Promise<void> {
    try {
      while (this.pending.size > 0) {
        const riding = [...this.pending];
        this.pending.clear();
        if (!(await this.send(riding))) {
          this.scheduleRetry();
          return;
        }
      }
    } finally {
      // No await between the loop's last check and here: a publish() meanwhile would have found `running` set.
      this.running = false;
      if (this.pending.size === 0) for (const wake of this.idleWaiters.splice(0)) wake();
    }
  }

  /** One produce; false when it failed and the positions wait for another attempt. */
  private async send(riding: readonly (readonly [string, Waiting])[]): Promise<boolean> {
    try {
      await this.options.producer.send(topics.projectionPositions, riding.map(([, waiting]) => waiting.event));
    } catch (error) {
      this.failures.inc();
      if (isSwitchyardError(error) && !error.retriable) {
        // Not Kafka's doing (an event the catalog refuses): trying again would fail the same way.
        this.options.logger.error({ err: error, positions: riding.length }, 'committed positions could not be published; dropped');
        return true;
      }
      for (const [key, waiting] of riding) {
        // A position committed while this one was in flight is newer; a partition handed over is its new owner's.
        if (!this.pending.has(key) && this.held(waiting.position)) this.pending.set(key, waiting);
      }
      if (this.failedAttempts === 0) {
        this.options.logger.warn(
          { err: error, positions: riding.length },
          'publishing committed positions failed; projecting carries on, the latest positions are published again with backoff',
        );
      }
      this.failedAttempts += 1;
      return false;
    }
    for (const [, { position }] of riding) this.published.inc({ projection: position.projection });
    if (this.failedAttempts > 0) {
      this.options.logger.info({ failedAttempts: this.failedAttempts }, 'publishing committed positions recovered');
      this.failedAttempts = 0;
    }
    return true;
  }

  private scheduleRetry(): void {
    if (this.stopped || this.pending.size === 0) return;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      this.kick();
    }, backoffMs(this.options.retry, this.failedAttempts - 1));
    this.retryTimer.unref();
  }
}
