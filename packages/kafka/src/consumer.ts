import { decodeEvent, type DecodeResult, type TopicEvent, type TopicSpec } from '@switchyard/events';
import type { Consumer, EachBatchPayload, IHeaders, Kafka, KafkaMessage } from 'kafkajs';
import { isRoutineKafkaError, type KafkaLogger } from './client.js';
import { KafkaError } from './errors.js';
import type { TopicNames } from './topic-names.js';

export interface ConsumedRecord<E = unknown> {
  readonly topic: string;
  readonly partition: number;
  readonly offset: string;
  /** Broker or producer timestamp, epoch milliseconds as a string. */
  readonly timestamp: string;
  readonly key: Buffer | null;
  readonly value: Buffer | null;
  /** The value as UTF-8 text, as `decoded` was parsed from it. */
  readonly text: string | null;
  readonly headers: IHeaders;
  /** The value decoded and validated against the topic's catalog, or why it could not be. */
  readonly decoded: DecodeResult<E>;
}

export interface PartitionBatch<E = unknown> {
  readonly topic: string;
  readonly spec: TopicSpec;
  readonly partition: number;
  readonly records: readonly ConsumedRecord<E>[];
  /** The position this batch was fetched from: this consumer's in-memory position for the partition. */
  readonly fetchedOffset: string;
  /** The offset to resume from once this batch is done (past any filtered control records). */
  readonly nextOffset: string;
  readonly highWatermark: string;
  /** Sends a group heartbeat if one is due; throws when a rebalance is in progress (let it propagate). */
  heartbeat(): Promise<void>;
  /** True when this batch is no longer ours to process: a seek is pending or the consumer is stopping. */
  isStale(): boolean;
  /** Moves this consumer's in-memory position past the batch (to `nextOffset`, or an earlier offset). */
  markDone(nextOffset?: string): void;
  /** Repositions this partition; takes effect on the next fetch and makes the current batch stale. */
  seek(offset: string): void;
}

export type BatchHandler<E> = (batch: PartitionBatch<E>) => Promise<void>;

export interface EventConsumerOptions<T extends TopicSpec> {
  groupId: string;
  topics: readonly T[];
  /** Where a partition with no committed offset starts: `true` earliest, `false` latest. */
  fromBeginning: boolean;
  /**
   * Commit the offsets marked done to Kafka (at-least-once consumers). Consumers that keep their position
   * elsewhere (the sync worker keeps it in Postgres) turn this off.
   */
  commitToKafka: boolean;
  sessionTimeoutMs?: number;
  heartbeatIntervalMs?: number;
  rebalanceTimeoutMs?: number;
  maxBytesPerPartition?: number;
  /** Upper bound of one fetch response over all partitions (kafkajs decodes a response in one go). */
  maxBytes?: number;
  maxWaitTimeMs?: number;
  /** How many partitions' batches are handled at once (default 1). */
  partitionsConsumedConcurrently?: number;
  logger: KafkaLogger;
  /** Called when the consumer stops on an error kafkajs will not restart from. */
  onFatal: (error: KafkaError) => void;
}

export interface AssignedPartitions {
  readonly topic: string;
  readonly partitions: readonly number[];
}

/** Records decoded between two yields to the event loop. */
const DECODE_SLICE = 64;

function toRecord<T extends TopicSpec>(
  topic: string,
  partition: number,
  spec: T,
  message: KafkaMessage,
): ConsumedRecord<TopicEvent<T>> {
  const text = message.value === null ? null : message.value.toString('utf8');
  return {
    topic,
    partition,
    offset: message.offset,
    timestamp: message.timestamp,
    key: message.key,
    value: message.value,
    text,
    headers: message.headers ?? {},
    decoded: decodeEvent(spec, text),
  };
}

/**
 * A consumer-group member that hands its handler one partition's batch at a time, every record already decoded
 * against the catalog (bad records arrive with the reason, for the handler to dead-letter). The handler decides
 * how far it got with `markDone`; nothing is marked implicitly.
 */
export class EventConsumer<T extends TopicSpec> {
  private readonly consumer: Consumer;
  private readonly names: TopicNames;
  private readonly options: EventConsumerOptions<T>;
  private joined = false;
  private running = false;
  /** Set by `stop`: a start still under way gives up, and a later one does nothing. */
  private stopRequested = false;
  private starting: Promise<void> | undefined;
  private readonly assignmentListeners: ((assignment: readonly AssignedPartitions[]) => void)[] = [];

  constructor(kafka: Kafka, names: TopicNames, options: EventConsumerOptions<T>) {
    this.names = names;
    this.options = options;
    this.consumer = kafka.consumer({
      groupId: options.groupId,
      sessionTimeout: options.sessionTimeoutMs ?? 30000,
      heartbeatInterval: options.heartbeatIntervalMs ?? 3000,
      rebalanceTimeout: options.rebalanceTimeoutMs ?? 60000,
      maxBytesPerPartition: options.maxBytesPerPartition ?? 1048576,
      maxBytes: options.maxBytes ?? 10485760,
      maxWaitTimeInMs: options.maxWaitTimeMs ?? 500,
      allowAutoTopicCreation: false,
      readUncommitted: false,
    });
    const { events } = this.consumer;
    this.consumer.on(events.GROUP_JOIN, ({ payload }) => {
      this.joined = true;
      const assignment = Object.entries(payload.memberAssignment).map(([topic, partitions]) => ({ topic, partitions }));
      options.logger.info(
        { component: 'kafka', groupId: options.groupId, assignment: payload.memberAssignment },
        'joined consumer group',
      );
      for (const listener of this.assignmentListeners) listener(assignment);
    });
    this.consumer.on(events.REBALANCING, () => {
      this.joined = false;
    });
    this.consumer.on(events.STOP, () => {
      this.joined = false;
    });
    this.consumer.on(events.CRASH, ({ payload }) => {
      this.joined = false;
      if (payload.restart) {
        if (isRoutineKafkaError(payload.error.message)) {
          // A group coordinator still loading (a fresh cluster) or moving (a broker gone): joining again is the fix.
          options.logger.info(
            { component: 'kafka', groupId: options.groupId, reason: payload.error.message },
            'consumer group not ready yet; joining again shortly',
          );
        } else {
          options.logger.warn({ component: 'kafka', groupId: options.groupId, err: payload.error }, 'consumer stopped on an error; kafkajs restarts it');
        }
        return;
      }
      this.running = false;
      options.onFatal(
        new KafkaError('KFK_CONSUMER_CRASHED', `consumer ${options.groupId} stopped: ${payload.error.message}`, {
          cause: payload.error,
          details: { groupId: options.groupId },
        }),
      );
    });
  }

  /** Member of the group with an assignment (possibly empty when there are more members than partitions). */
  get isJoined(): boolean {
    return this.running && this.joined;
  }

  onAssignment(listener: (assignment: readonly AssignedPartitions[]) => void): void {
    this.assignmentListeners.push(listener);
  }

  /**
   * Connects, subscribes and runs. A `stop` that comes while this is under way (a service asked to stop during its
   * start) makes it give up between steps, so no consumer starts after its service stopped it.
   */
  async start(handler: BatchHandler<TopicEvent<T>>): Promise<void> {
    if (this.stopRequested) return;
    this.starting = (async () => {
      await this.consumer.connect();
      if (this.stopRequested) return;
      await this.consumer.subscribe({
        topics: this.options.topics.map((spec) => this.names.name(spec)),
        fromBeginning: this.options.fromBeginning,
      });
      if (this.stopRequested) return;
      this.running = true;
      await this.consumer.run({
        autoCommit: this.options.commitToKafka,
        eachBatchAutoResolve: false,
        partitionsConsumedConcurrently: this.options.partitionsConsumedConcurrently ?? 1,
        eachBatch: (payload) => this.handleBatch(payload, handler),
      });
    })();
    await this.starting;
  }

  private async handleBatch(payload: EachBatchPayload, handler: BatchHandler<TopicEvent<T>>): Promise<void> {
    const { batch } = payload;
    const spec = this.names.spec(batch.topic) as T | undefined;
    if (spec === undefined) {
      throw new KafkaError('KFK_UNKNOWN_TOPIC', `no catalog entry for topic ${batch.topic}`, {
        details: { topic: batch.topic },
      });
    }
    const nextOffset = (BigInt(batch.lastOffset()) + 1n).toString();
    // Decoding a fetched batch (JSON and schema validation) is the consumer's heaviest synchronous work; done in
    // slices with I/O in between, other batches' database replies are not kept waiting behind it.
    const records: ConsumedRecord<TopicEvent<T>>[] = [];
    for (let index = 0; index < batch.messages.length; index += DECODE_SLICE) {
      if (index > 0) await new Promise<void>((resolve) => setImmediate(resolve));
      for (const message of batch.messages.slice(index, index + DECODE_SLICE)) {
        records.push(toRecord(batch.topic, batch.partition, spec, message));
      }
    }
    await handler({
      topic: batch.topic,
      spec,
      partition: batch.partition,
      records,
      // kafkajs keeps the requested position on its Batch without declaring it in its types.
      fetchedOffset: String((batch as unknown as { fetchedOffset: string }).fetchedOffset),
      nextOffset,
      highWatermark: batch.highWatermark,
      heartbeat: () => payload.heartbeat(),
      isStale: () => payload.isStale() || !payload.isRunning(),
      markDone: (offset = nextOffset) => {
        payload.resolveOffset((BigInt(offset) - 1n).toString());
      },
      seek: (offset) => {
        this.consumer.seek({ topic: batch.topic, partition: batch.partition, offset });
      },
    });
    if (this.options.commitToKafka) await payload.commitOffsetsIfNecessary();
  }

  /** Repositions a partition of this member's assignment; takes effect on the next fetch. */
  seek(topic: string, partition: number, offset: string): void {
    this.consumer.seek({ topic, partition, offset });
  }

  /** Stops fetching, waits for the batches in hand to finish, commits (when committing), leaves the group. */
  async stop(): Promise<void> {
    this.stopRequested = true;
    this.running = false;
    await this.starting?.catch(() => undefined);
    await this.consumer.disconnect();
  }
}
