import { randomBytes } from 'node:crypto';
import { topics, type TopicEvent } from '@switchyard/events';
import {
  EventConsumer,
  type AssignedPartitions,
  type Kafka,
  type KafkaAdmin,
  type KafkaError,
  type PartitionBatch,
  type PartitionOffsets,
  type TopicNames,
} from '@switchyard/kafka';
import type { Logger, Registry } from '@switchyard/service-runtime';
import { Counter, Histogram } from 'prom-client';
import { WsFanoutError } from './errors.js';

/** What the stream carries. Commands are not streamed: clients see their results. */
export const STREAMED_TOPICS = [topics.entities, topics.commandResults, topics.apiHealth, topics.deadLetters] as const;
export type StreamedTopic = (typeof STREAMED_TOPICS)[number];
export type StreamedEvent = TopicEvent<StreamedTopic>;

/** Unique per process, so every instance is its own consumer group and sees every event. */
export function instanceId(hostname: string, pid: number, random: string = randomBytes(4).toString('hex')): string {
  return `${hostname}-${pid}-${random}`;
}

export function fanoutGroupId(topicPrefix: string, instance: string): string {
  return `${topicPrefix}ws-fanout.${instance}`;
}

export interface LiveEventsDeps {
  readonly kafka: Kafka;
  readonly names: TopicNames;
  readonly admin: Pick<KafkaAdmin, 'partitionOffsets' | 'deleteGroups'>;
  readonly groupId: string;
  readonly logger: Logger;
  readonly registry: Registry;
  /** Called for every decoded event, in partition order; `receivedAt` is performance.now() at receipt. */
  readonly onEvent: (event: StreamedEvent, receivedAt: number) => void;
  readonly onFatal: (error: KafkaError) => void;
  readonly maxWaitTimeMs?: number;
}

function positionKey(topic: string, partition: number): string {
  return `${topic}/${partition}`;
}


const LAG_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

/**
 * Streams the events produced from now on — never older ones. Before joining, it captures each streamed topic's
 * high watermarks; whenever partitions are assigned it seeks each to where this process is (the captured offset
 * at first, then just past the last batch handed on), so nothing produced after `start()` is missed, nothing
 * before it is replayed, and a kafkajs restart or rebalance neither skips nor repeats. Offsets are never
 * committed: the group exists only so the broker assigns this process every partition.
 */
export class LiveEvents {
  private readonly deps: LiveEventsDeps;
  private readonly positions = new Map<string, string>();
  private consumer: EventConsumer<StreamedTopic> | undefined;
  private positioned = false;
  private readonly received: Counter<'topic'>;
  private readonly undecodable: Counter<'topic' | 'code'>;
  private readonly lag: Histogram;

  constructor(deps: LiveEventsDeps) {
    this.deps = deps;
    const registers = [deps.registry];
    this.received = new Counter({
      name: 'switchyard_ws_events_received_total',
      help: 'Events received from Kafka, by catalog topic',
      labelNames: ['topic'],
      registers,
    });
    this.undecodable = new Counter({
      name: 'switchyard_ws_decode_failures_total',
      help: 'Kafka records skipped because they did not decode against the catalog, by topic and error code',
      labelNames: ['topic', 'code'],
      registers,
    });
    this.lag = new Histogram({
      name: 'switchyard_ws_kafka_lag_seconds',
      help: "From a record's Kafka timestamp to its receipt here",
      buckets: LAG_BUCKETS,
      registers,
    });
  }

  get groupId(): string {
    return this.deps.groupId;
  }

  /** Captures the live offsets, joins the group and starts consuming. Resolves once the group is joined. */
  async start(): Promise<void> {
    const { names } = this.deps;
    for (const spec of STREAMED_TOPICS) {
      const topic = names.name(spec);
      for (const { partition, high } of await this.liveOffsets(topic)) {
        this.positions.set(positionKey(topic, partition), high);
      }
    }
    const consumer = new EventConsumer(this.deps.kafka, names, {
      groupId: this.deps.groupId,
      topics: STREAMED_TOPICS,
      fromBeginning: false,
      commitToKafka: false,
      logger: this.deps.logger,
      onFatal: this.deps.onFatal,
      ...(this.deps.maxWaitTimeMs === undefined ? {} : { maxWaitTimeMs: this.deps.maxWaitTimeMs }),
    });
    consumer.onAssignment((assignment) => this.position(consumer, assignment));
    this.consumer = consumer;
    await consumer.start((batch) => this.handle(batch));
  }

  /** The topic's high watermarks (KafkaAdmin retries a leader that is not ready yet). */
  private liveOffsets(topic: string): Promise<PartitionOffsets[]> {
    return this.deps.admin.partitionOffsets(topic);
  }

  /** For /readyz: throws unless the consumer is in its group and positioned, so events produced from now on arrive. */
  check(): void {
    if (this.consumer === undefined || !this.consumer.isJoined) throw new Error('the consumer has not joined its group');
    if (!this.positioned) throw new Error('the consumer is not positioned at the live offsets yet');
  }

  /** Leaves the group (kafkajs waits for the batch in hand). */
  async stop(): Promise<void> {
    this.positioned = false;
    await this.consumer?.stop();
  }

  /** The group holds no offsets and no members once stopped; deleting it leaves nothing behind on the broker. */
  async deleteGroup(): Promise<void> {
    await this.deps.admin.deleteGroups([this.deps.groupId]);
  }

  /**
   * Runs inside the GROUP_JOIN event, before kafkajs fetches for the new assignment, so the seek decides the
   * first fetch offset. A partition not known at start (added since) is new, so all of it is live: offset 0.
   */
  private position(consumer: EventConsumer<StreamedTopic>, assignment: readonly AssignedPartitions[]): void {
    const offsets: Record<string, string> = {};
    for (const { topic, partitions } of assignment) {
      for (const partition of partitions) {
        const key = positionKey(topic, partition);
        const offset = this.positions.get(key) ?? '0';
        consumer.seek(topic, partition, offset);
        offsets[key] = offset;
      }
    }
    this.positioned = true;
    this.deps.logger.info({ groupId: this.deps.groupId, offsets }, 'positioned at live offsets');
  }

  private async handle(batch: PartitionBatch<StreamedEvent>): Promise<void> {
    // A seek is pending (a new assignment): these records may predate where we are; the next fetch has the right ones.
    if (batch.isStale()) return;
    const receivedAt = performance.now();
    const now = Date.now();
    let decoded = 0;
    for (const record of batch.records) {
      if (record.decoded.ok) {
        decoded += 1;
        this.lag.observe(Math.max(0, now - Number(record.timestamp)) / 1000);
        this.deps.onEvent(record.decoded.event, receivedAt);
        continue;
      }
      const { error } = record.decoded;
      this.undecodable.inc({ topic: batch.spec.name, code: error.code });
      const skipped = new WsFanoutError('WS_UNDECODABLE_RECORD', `skipping an undecodable record: ${error.message}`, {
        cause: error,
        details: { topic: record.topic, partition: record.partition, offset: record.offset, ...error.details },
      });
      this.deps.logger.warn(
        { code: skipped.code, cause: error.code, ...skipped.details },
        skipped.message,
      );
    }
    if (decoded > 0) this.received.inc({ topic: batch.spec.name }, decoded);
    batch.markDone();
    this.positions.set(positionKey(batch.topic, batch.partition), batch.nextOffset);
  }
}
