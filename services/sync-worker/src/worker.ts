import type { Envelope, TopicSpec } from '@switchyard/events';
import { EventConsumer, type DeadLetters, type Kafka, type KafkaAdmin, type PartitionBatch, type TopicNames } from '@switchyard/kafka';
import type { Logger, Registry } from '@switchyard/service-runtime';
import type pg from 'pg';
import { Counter, Histogram } from 'prom-client';
import { applyIsolated, applyPrepared, prepareBatch } from './apply.js';
import { isDataError } from './db.js';
import { beginAndLock, saveAndCommit } from './offsets.js';
import type { PositionPublisher } from './position-publisher.js';
import { projectionsByTopic, type Projection } from './projections/index.js';
import { retryTransient, type RetryPolicy } from './retry.js';

export interface SyncWorkerOptions {
  readonly kafka: Kafka;
  /** Asked for the Kafka cluster's id at start: it is stored with every position (see offsets.ts). */
  readonly admin: Pick<KafkaAdmin, 'clusterId'>;
  readonly names: TopicNames;
  readonly pool: pg.Pool;
  readonly deadLetters: Pick<DeadLetters, 'send'>;
  /** Told every position once it is committed, and the stored one when a batch is found behind or ahead of it. */
  readonly positions: Pick<PositionPublisher, 'publish' | 'retainOnly'>;
  readonly groupId: string;
  readonly logger: Logger;
  readonly registry: Registry;
  readonly sessionTimeoutMs: number;
  readonly heartbeatIntervalMs: number;
  /** Batch transactions open at once (across partitions; one partition's batches always run in order). */
  readonly concurrency: number;
  readonly maxBytesPerPartition: number;
  readonly retry: RetryPolicy;
  readonly onFatal: (error: Error) => void;
}

interface Degradation {
  readonly since: number;
  readonly reason: string;
}

/** A counting semaphore for transaction slots. */
class Slots {
  private free: number;
  private readonly waiting: (() => void)[] = [];

  constructor(size: number) {
    this.free = size;
  }

  async acquire(): Promise<() => void> {
    if (this.free > 0) this.free -= 1;
    else await new Promise<void>((resolve) => this.waiting.push(resolve));
    return () => {
      const next = this.waiting.shift();
      if (next) next();
      else this.free += 1;
    };
  }
}

/**
 * Projects the entity, command, command-result and API-health topics into Postgres.
 *
 * Each partition batch is one Postgres transaction that (1) locks the partition's row in `sync_offsets`, (2) drops
 * records below the stored position — already applied by an earlier run or by another member during a rebalance —
 * (3) applies the rest with a bounded number of set-based statements, dead-lettering records that cannot be used,
 * and (4) stores the new position. Postgres is the only place positions are kept; nothing is committed to Kafka.
 * See docs/adr/0002-offsets-in-postgres.md.
 *
 * Fetching is pipelined with writing: the batch handler queues the batch on its partition's chain (a partition's
 * batches commit strictly in order) and returns, so kafkajs fetches and decodes the next batches while earlier ones
 * are in Postgres. The in-memory Kafka position may therefore run ahead of Postgres; every transaction compares the
 * batch's fetch position with the stored one and, should Postgres hold less than the batch assumes (it lost
 * commits, or another member was faster), seeks back to what Postgres holds.
 *
 * A transient failure (Postgres unreachable, deadlock) retries the batch with capped exponential backoff while later
 * batches of that partition wait behind it; `/readyz` reports the degradation until a batch commits again. Any other
 * error stops the process, which restarts from the positions in Postgres.
 *
 * Every committed position is handed to the position publisher, which puts it on the projection-positions topic
 * without holding up the next batch (position-publisher.ts).
 */
export class SyncWorker {
  private readonly options: SyncWorkerOptions;
  private readonly consumer: EventConsumer<TopicSpec>;
  private readonly routes: Map<TopicSpec, Projection>;
  /** Partitions whose last attempt failed transiently, keyed `topic/partition`. */
  private readonly degraded = new Map<string, Degradation>();
  /** The tail of each partition's chain of queued batches. */
  private readonly chains = new Map<string, Promise<void>>();
  private readonly slots: Slots;
  private readonly maxQueued: number;
  private queued = 0;
  private readonly roomWaiters: (() => void)[] = [];
  private stopping = false;
  private clusterId = '';
  private readonly projected: Counter<'projection'>;
  private readonly deadLettered: Counter<'projection' | 'code'>;
  private readonly skipped: Counter<'projection' | 'code'>;
  private readonly transientFailures: Counter<'projection'>;
  private readonly rewinds: Counter<'projection'>;
  private readonly resets: Counter<'projection'>;
  private readonly batchDuration: Histogram<'projection'>;
  private readonly eventAge: Histogram;

  constructor(options: SyncWorkerOptions) {
    this.options = options;
    this.slots = new Slots(options.concurrency);
    // Enough queued work that a fetch's batches are decoded while the previous ones are written.
    this.maxQueued = options.concurrency * 3;
    const byTopic = projectionsByTopic();
    this.routes = byTopic;
    this.consumer = new EventConsumer(options.kafka, options.names, {
      groupId: options.groupId,
      topics: [...byTopic.keys()],
      fromBeginning: true,
      commitToKafka: false,
      sessionTimeoutMs: options.sessionTimeoutMs,
      heartbeatIntervalMs: options.heartbeatIntervalMs,
      partitionsConsumedConcurrently: options.concurrency,
      maxBytesPerPartition: options.maxBytesPerPartition,
      logger: options.logger,
      onFatal: options.onFatal,
    });
    this.consumer.onAssignment((assignment) => {
      const held = new Set(assignment.flatMap(({ topic, partitions }) => partitions.map((partition) => `${topic}/${partition}`)));
      options.positions.retainOnly((position) => held.has(`${position.topic}/${position.partition}`));
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
    this.skipped = new Counter({
      name: 'switchyard_sync_records_skipped_total',
      help: 'Undecodable records another service answers (bad commands: the adapter rejects and dead-letters them)',
      labelNames: ['projection', 'code'],
      registers,
    });
    this.transientFailures = new Counter({
      name: 'switchyard_sync_transient_failures_total',
      help: 'Batch transactions that failed transiently and were retried',
      labelNames: ['projection'],
      registers,
    });
    this.rewinds = new Counter({
      name: 'switchyard_sync_rewinds_total',
      help: 'Batches fetched beyond the position Postgres holds, re-read from that position',
      labelNames: ['projection'],
      registers,
    });
    this.resets = new Counter({
      name: 'switchyard_sync_position_resets_total',
      help: 'Stored positions from another log (another Kafka cluster, or beyond the end of a recreated topic) reset to its start',
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
      buckets: [0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 30],
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

  /** Counts positions of another Kafka cluster reset outside a batch (adopted at registration, see instances.ts). */
  countResets(projection: string, count: number): void {
    this.resets.inc({ projection }, count);
  }

  async start(): Promise<void> {
    this.clusterId = await this.options.admin.clusterId();
    await this.consumer.start((batch) => this.enqueue(batch as PartitionBatch<Envelope>));
  }

  /**
   * Stops fetching, lets the transactions in flight finish and abandons queued batches that have not started (or
   * are waiting out a Postgres outage): they were never committed and are read again on the next start.
   */
  async stop(): Promise<void> {
    this.stopping = true;
    for (const wake of this.roomWaiters.splice(0)) wake();
    await this.consumer.stop();
    await Promise.all(this.chains.values());
  }

  private async enqueue(batch: PartitionBatch<Envelope>): Promise<void> {
    const projection = this.routes.get(batch.spec);
    if (projection === undefined || this.stopping) return;
    while (this.queued >= this.maxQueued && !this.stopping) {
      // Waiting out a slow or unreachable Postgres must not cost the group membership: heartbeat meanwhile (it
      // throws when a rebalance is under way, handing this unqueued batch back to kafkajs).
      await this.waitForRoom(this.options.heartbeatIntervalMs);
      await batch.heartbeat();
    }
    this.queued += 1;
    const key = `${batch.topic}/${batch.partition}`;
    const chain: Promise<void> = (this.chains.get(key) ?? Promise.resolve())
      .then(() => this.run(batch, projection, key))
      .catch((error: unknown) => this.options.onFatal(error as Error))
      .finally(() => {
        this.queued -= 1;
        this.roomWaiters.shift()?.();
        if (this.chains.get(key) === chain) this.chains.delete(key);
      });
    this.chains.set(key, chain);
    // The in-memory position moves on so kafkajs fetches ahead; Postgres keeps the position that counts.
    batch.markDone();
  }

  private waitForRoom(timeoutMs: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const wake = () => {
        clearTimeout(timer);
        resolve();
      };
      const timer = setTimeout(() => {
        const index = this.roomWaiters.indexOf(wake);
        if (index >= 0) this.roomWaiters.splice(index, 1);
        resolve();
      }, timeoutMs);
      this.roomWaiters.push(wake);
    });
  }

  private async run(batch: PartitionBatch<Envelope>, projection: Projection, key: string): Promise<void> {
    if (this.stopping) return;
    const release = await this.slots.acquire();
    const started = performance.now();
    try {
      await retryTransient(
        { isStale: () => this.stopping, heartbeat: async () => undefined },
        this.options.retry,
        () => this.project(batch, projection),
        {
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
        },
      );
    } finally {
      release();
    }
  }

  private async project(batch: PartitionBatch<Envelope>, projection: Projection, isolate = false): Promise<void> {
    // Built before the transaction opens; rebuilt only if the stored position says some records were applied.
    let prepared = prepareBatch(projection, batch.records, projection.tables);
    const client = await this.options.pool.connect();
    let released = false;
    try {
      const position = await beginAndLock(client, projection.name, batch.topic, batch.partition);
      let stored = position.next;
      const partitionOf = { projection: projection.name, topic: batch.topic, partition: batch.partition, cluster: this.clusterId };
      // A position stored before clusters were recorded may be from any log: reading this one again from its start
      // costs one replay, which the version guard and the history tables' keys make harmless.
      const otherCluster = position.cluster !== this.clusterId && (position.cluster !== null || stored > 0n);
      const reset = otherCluster || stored > BigInt(batch.highWatermark);
      if (reset) {
        // The position belongs to another log: written against another Kafka cluster (a new broker under the same
        // database), or beyond the end of this log (the topic was recreated or truncated). Everything this log holds
        // is new here, so it is read from its start — where kafkajs begins a partition we committed nothing for;
        // the version guard keeps older states out.
        this.resets.inc({ projection: projection.name });
        this.options.logger.warn(
          {
            projection: projection.name,
            topic: batch.topic,
            partition: batch.partition,
            stored: stored.toString(),
            logEnd: batch.highWatermark,
            ...(otherCluster ? { storedCluster: position.cluster, cluster: this.clusterId } : {}),
          },
          otherCluster
            ? 'stored position was read from another Kafka cluster; reading this log from its start'
            : 'stored position is beyond the end of the log; reading the log from its start',
        );
        stored = BigInt(batch.fetchedOffset);
      }
      // The position Postgres holds, when it is this log's and past 0: committed, so it may be published as it is.
      const publishStored = () => {
        if (!reset && stored > 0n) this.options.positions.publish({ ...partitionOf, nextOffset: stored.toString() });
      };
      if (BigInt(batch.fetchedOffset) > stored) {
        // Records between the stored position and this batch were never committed here: read them again.
        await client.query('ROLLBACK');
        this.rewinds.inc({ projection: projection.name });
        this.options.logger.warn(
          { projection: projection.name, topic: batch.topic, partition: batch.partition, fetched: batch.fetchedOffset, stored: stored.toString() },
          'fetched beyond the stored position; re-reading from it',
        );
        batch.seek(stored.toString());
        // What Postgres holds is committed: published again, it replaces a position Postgres has since lost.
        publishStored();
        return;
      }
      if (BigInt(batch.nextOffset) <= stored) {
        // Everything here was applied before (a restart reads from the earliest offset): jump ahead.
        await client.query('ROLLBACK');
        batch.seek(stored.toString());
        // The first batch of a partition this worker takes over (or restarts with) lands here: publishing the
        // stored position covers a predecessor that committed it but stopped or crashed before publishing.
        publishStored();
        return;
      }
      // Offsets ascend within a batch: only a batch that starts before the stored position needs filtering.
      const first = batch.records[0];
      const fresh = first === undefined || BigInt(first.offset) >= stored ? batch.records : batch.records.filter((record) => BigInt(record.offset) >= stored);
      if (fresh.length !== batch.records.length) prepared = prepareBatch(projection, fresh, projection.tables);
      let outcome;
      if (isolate) {
        outcome = await applyIsolated(client, projection, prepared, projection.tables);
      } else {
        try {
          outcome = await applyPrepared(client, prepared);
        } catch (error) {
          if (!isDataError(error)) throw error;
          // Postgres refused some record's data: start over, one record at a time, to set just those aside.
          await client.query('ROLLBACK');
          client.release();
          released = true;
          return this.project(batch, projection, true);
        }
      }
      const elsewhere = projection.undecodableHandledElsewhere?.includes(batch.spec) ?? false;
      // An undecodable record of a topic another service dead-letters is skipped here, not dead-lettered twice.
      const skipped: typeof outcome.rejected = [];
      const toDeadLetter: typeof outcome.rejected = [];
      for (const rejection of outcome.rejected) (elsewhere && rejection.why.code.startsWith('EVT_') ? skipped : toDeadLetter).push(rejection);
      if (toDeadLetter.length > 0) {
        // Durable on the dead-letter topic before the position moves past them.
        await this.options.deadLetters.send(toDeadLetter);
      }
      await saveAndCommit(client, partitionOf, batch.nextOffset);
      this.options.positions.publish({ ...partitionOf, nextOffset: batch.nextOffset });
      const committedAt = Date.now();
      this.projected.inc({ projection: projection.name }, outcome.applied);
      for (const { why } of toDeadLetter) this.deadLettered.inc({ projection: projection.name, code: why.code });
      for (const { why } of skipped) this.skipped.inc({ projection: projection.name, code: why.code });
      for (const record of fresh) this.eventAge.observe((committedAt - Number(record.timestamp)) / 1000);
      if (toDeadLetter.length > 0) {
        this.options.logger.warn(
          {
            projection: projection.name,
            topic: batch.topic,
            partition: batch.partition,
            rejected: toDeadLetter.map(({ record, why }) => ({ offset: record.offset, code: why.code, reason: why.reason })),
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
