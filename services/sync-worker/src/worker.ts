import type { Envelope, TopicSpec } from '@switchyard/events';
import {
  EventConsumer,
  type DeadLetters,
  type Kafka,
  type KafkaError,
  type PartitionBatch,
  type TopicNames,
} from '@switchyard/kafka';
import type { Logger, Registry } from '@switchyard/service-runtime';
import type pg from 'pg';
import { Counter, Histogram } from 'prom-client';
import { applyRecords } from './apply.js';
import { lockOffset, saveOffset } from './offsets.js';
import { projectionsByTopic, type Projection } from './projections/index.js';
import { retryTransient, type RetryPolicy } from './retry.js';

export interface SyncWorkerOptions {
  readonly kafka: Kafka;
  readonly names: TopicNames;
  readonly pool: pg.Pool;
  readonly deadLetters: Pick<DeadLetters, 'send'>;
  readonly groupId: string;
  readonly logger: Logger;
  readonly registry: Registry;
  readonly sessionTimeoutMs: number;
  readonly heartbeatIntervalMs: number;
  readonly partitionsConsumedConcurrently: number;
  readonly maxBytesPerPartition: number;
  readonly retry: RetryPolicy;
  readonly onFatal: (error: KafkaError) => void;
}

interface Degradation {
  readonly since: number;
  readonly reason: string;
}

/**
 * Projects the entity, command, command-result and API-health topics into Postgres.
 *
 * Each partition batch is one Postgres transaction that (1) locks the partition's row in `sync_offsets`, (2) drops
 * records below the stored position — already applied by an earlier run or by another member during a rebalance —
 * (3) applies the rest with a bounded number of set-based statements, dead-lettering records that cannot be used,
 * and (4) stores the new position. Postgres is the only place positions are kept; nothing is committed to Kafka,
 * so a partition always restarts at or before the stored position and the filter makes the overlap harmless.
 * See docs/adr/0002-offsets-in-postgres.md.
 *
 * A transient failure (Postgres unreachable, deadlock) leaves the batch unmarked and retries it with capped
 * exponential backoff, heartbeating in between; `/readyz` reports the degradation until a batch commits again.
 */
export class SyncWorker {
  private readonly options: SyncWorkerOptions;
  private readonly consumer: EventConsumer<TopicSpec>;
  private readonly routes: Map<string, Projection>;
  /** Partitions whose last attempt failed transiently, keyed `topic/partition`. */
  private readonly degraded = new Map<string, Degradation>();
  private readonly projected: Counter<'projection'>;
  private readonly deadLettered: Counter<'projection' | 'code'>;
  private readonly transientFailures: Counter<'projection'>;
  private readonly batchDuration: Histogram<'projection'>;
  private readonly eventAge: Histogram;

  constructor(options: SyncWorkerOptions) {
    this.options = options;
    const byTopic = projectionsByTopic();
    this.routes = new Map([...byTopic].map(([spec, projection]) => [options.names.name(spec), projection]));
    this.consumer = new EventConsumer(options.kafka, options.names, {
      groupId: options.groupId,
      topics: [...byTopic.keys()],
      fromBeginning: true,
      commitToKafka: false,
      sessionTimeoutMs: options.sessionTimeoutMs,
      heartbeatIntervalMs: options.heartbeatIntervalMs,
      partitionsConsumedConcurrently: options.partitionsConsumedConcurrently,
      maxBytesPerPartition: options.maxBytesPerPartition,
      logger: options.logger,
      onFatal: options.onFatal,
    });
    const registers = [options.registry];
    this.projected = new Counter({
      name: 'switchyard_sync_events_projected_total',
      help: 'Events applied to projection tables (including those the version guard made no-ops)',
      labelNames: ['projection'],
      registers,
    });
    this.deadLettered = new Counter({
      name: 'switchyard_sync_records_dead_lettered_total',
      help: 'Records sent to the dead-letter topic, by error code',
      labelNames: ['projection', 'code'],
      registers,
    });
    this.transientFailures = new Counter({
      name: 'switchyard_sync_transient_failures_total',
      help: 'Batch transactions that failed transiently and were retried',
      labelNames: ['projection'],
      registers,
    });
    this.batchDuration = new Histogram({
      name: 'switchyard_sync_batch_duration_seconds',
      help: 'Time to project one partition batch, transaction included',
      labelNames: ['projection'],
      buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers,
    });
    this.eventAge = new Histogram({
      name: 'switchyard_sync_event_age_at_commit_seconds',
      help: 'Kafka record timestamp to projection commit',
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers,
    });
  }

  get isJoined(): boolean {
    return this.consumer.isJoined;
  }

  /** Throws with the reason while batches are failing transiently (for /readyz). */
  assertHealthy(): void {
    const oldest = [...this.degraded.values()].sort((a, b) => a.since - b.since)[0];
    if (oldest) {
      const seconds = Math.round((Date.now() - oldest.since) / 1000);
      throw new Error(`${this.degraded.size} partition(s) stalled for ${seconds}s: ${oldest.reason}`);
    }
  }

  async start(): Promise<void> {
    await this.consumer.start((batch) => this.handle(batch));
  }

  /** Stops fetching and waits for the batch transactions in flight; uncommitted work is simply redone later. */
  async stop(): Promise<void> {
    await this.consumer.stop();
  }

  private async handle(batch: PartitionBatch): Promise<void> {
    const projection = this.routes.get(batch.topic);
    if (projection === undefined) return;
    const started = performance.now();
    const key = `${batch.topic}/${batch.partition}`;
    await retryTransient(batch, this.options.retry, () => this.project(batch as PartitionBatch<Envelope>, projection), {
      onFailure: (error, attempt, delayMs) => {
        if (!this.degraded.has(key)) this.degraded.set(key, { since: Date.now(), reason: `${error.code}: ${error.message}` });
        this.transientFailures.inc({ projection: projection.name });
        if (attempt % 10 === 0) {
          this.options.logger.warn(
            { err: error, projection: projection.name, topic: batch.topic, partition: batch.partition, attempt, retryInMs: Math.round(delayMs) },
            'batch failed transiently; retrying',
          );
        }
      },
      onSuccess: (failedAttempts) => {
        this.batchDuration.observe({ projection: projection.name }, (performance.now() - started) / 1000);
        if (this.degraded.delete(key)) {
          this.options.logger.info({ projection: projection.name, topic: batch.topic, partition: batch.partition, failedAttempts }, 'projection recovered');
        }
      },
    });
  }

  private async project(batch: PartitionBatch<Envelope>, projection: Projection): Promise<void> {
    const client = await this.options.pool.connect();
    let released = false;
    try {
      await client.query('BEGIN');
      const stored = await lockOffset(client, projection.name, batch.topic, batch.partition);
      if (BigInt(batch.nextOffset) <= stored) {
        // Everything here was applied before (a restart reads from the earliest offset): jump ahead.
        await client.query('ROLLBACK');
        batch.seek(stored.toString());
        return;
      }
      const fresh = batch.records.filter((record) => BigInt(record.offset) >= stored);
      const outcome = await applyRecords(client, projection, fresh, projection.tables);
      if (outcome.rejected.length > 0) {
        // Durable on the dead-letter topic before the position moves past them.
        await this.options.deadLetters.send(outcome.rejected);
      }
      await saveOffset(client, projection.name, batch.topic, batch.partition, batch.nextOffset);
      await client.query('COMMIT');
      const committedAt = Date.now();
      batch.markDone();
      this.projected.inc({ projection: projection.name }, outcome.applied);
      for (const { why } of outcome.rejected) this.deadLettered.inc({ projection: projection.name, code: why.code });
      for (const record of fresh) this.eventAge.observe((committedAt - Number(record.timestamp)) / 1000);
      if (outcome.rejected.length > 0) {
        this.options.logger.warn(
          {
            projection: projection.name,
            topic: batch.topic,
            partition: batch.partition,
            rejected: outcome.rejected.map(({ record, why }) => ({ offset: record.offset, code: why.code, reason: why.reason })),
          },
          'records dead-lettered',
        );
      }
    } catch (error) {
      await client.query('ROLLBACK').catch(() => undefined);
      client.release(error as Error);
      released = true;
      throw error;
    } finally {
      if (!released) client.release();
    }
  }
}
