import {
  CLOUDEVENTS_CONTENT_TYPE,
  CONTENT_TYPE_HEADER,
  encodeEvent,
  validateEvent,
  type Envelope,
  type TopicEventInput,
  type TopicSpec,
} from '@switchyard/events';
import { CompressionTypes, Partitioners, type Kafka, type Producer } from 'kafkajs';
import { KafkaError } from './errors.js';
import type { TopicNames } from './topic-names.js';

export interface EventProducerOptions {
  /**
   * Check every event against its schema before sending (default true). Catches producer bugs before they reach
   * a consumer's dead-letter topic; benchmarks that measure the wire turn it off.
   */
  validate?: boolean;
  /** Compression for record batches (default none: loopback and small events). */
  compression?: 'none' | 'gzip' | 'lz4' | 'zstd' | 'snappy';
}

export interface OutgoingBatch<T extends TopicSpec = TopicSpec> {
  topic: T;
  events: readonly TopicEventInput<T>[];
}

const compressions = {
  none: CompressionTypes.None,
  gzip: CompressionTypes.GZIP,
  lz4: CompressionTypes.LZ4,
  zstd: CompressionTypes.ZSTD,
  snappy: CompressionTypes.Snappy,
} as const;

/** Where one record landed. */
export interface Acknowledged {
  readonly topic: string;
  readonly partition: number;
  readonly offset: string;
}

export interface RawRecord {
  key: Buffer | string | null;
  value: Buffer | string | null;
  headers: Record<string, string | Buffer>;
  /** A partition of the caller's choosing; by default the key's (murmur2, as Kafka's Java client). */
  partition?: number;
}

type TopicRecords = { topic: string; messages: readonly RawRecord[] };

/** A caller's records waiting for (or riding in) a produce request, and how to tell the caller. */
interface Pending {
  readonly topicMessages: readonly TopicRecords[];
  readonly bytes: number;
  readonly resolve: (acknowledged: Acknowledged[]) => void;
  readonly reject: (error: unknown) => void;
}

/** A produce request carries records of several callers up to about this many value bytes (Kafka takes 1 MiB per batch). */
const MAX_REQUEST_BYTES = 512 * 1024;

function byteLength(value: Buffer | string | null): number {
  if (value === null) return 0;
  return typeof value === 'string' ? Buffer.byteLength(value) : value.length;
}

/**
 * Produces catalog events: the Kafka key comes from the topic's `keyOf`, the value is the structured CloudEvent,
 * and sends wait for all in-sync replicas (acks = -1) with the idempotent producer, so a retried send never
 * duplicates a record.
 *
 * One produce request is in flight at a time; sends made meanwhile wait and go together in the next one, as the
 * Java client's accumulator does. kafkajs's idempotent producer numbers each partition's records per request and
 * takes the numbers back when a request fails, so two requests in flight at once could be given the same numbers
 * after a partial failure, and the broker would drop the second as a duplicate while acknowledging it
 * (docs/adr/0003-kafka-client.md). Coalescing also sends fewer, larger requests under concurrency.
 */
export class EventProducer {
  private readonly producer: Producer;
  private readonly names: TopicNames;
  private readonly validate: boolean;
  private readonly compression: CompressionTypes;
  /** The partition kafkajs chose for each record object of the request in flight. */
  private readonly partitionOf = new WeakMap<object, number>();
  private queue: Pending[] = [];
  /** The loop sending the queue, while it runs. */
  private flushing: Promise<void> | undefined;
  private connected = false;

  constructor(kafka: Kafka, names: TopicNames, options: EventProducerOptions = {}) {
    const partitionOf = this.partitionOf;
    this.producer = kafka.producer({
      idempotent: true,
      maxInFlightRequests: 5,
      // The default partitioner, recording its choice so that each record's offset can be told to its sender.
      createPartitioner: () => {
        const partitioner = Partitioners.DefaultPartitioner();
        return (args) => {
          const partition = partitioner(args);
          partitionOf.set(args.message, partition);
          return partition;
        };
      },
      allowAutoTopicCreation: false,
    });
    this.names = names;
    this.validate = options.validate ?? true;
    this.compression = compressions[options.compression ?? 'none'];
    this.producer.on(this.producer.events.DISCONNECT, () => {
      this.connected = false;
    });
  }

  get isConnected(): boolean {
    return this.connected;
  }

  async connect(): Promise<void> {
    await this.producer.connect();
    this.connected = true;
  }

  /** Waits for the sends already made, then disconnects. */
  async disconnect(): Promise<void> {
    await this.flushing;
    await this.producer.disconnect();
    this.connected = false;
  }

  private toMessage<T extends TopicSpec>(topic: T, event: TopicEventInput<T>): RawRecord {
    if (this.validate) {
      const checked = validateEvent(topic, event);
      if (!checked.ok) {
        throw new KafkaError('KFK_INVALID_EVENT', `refusing to produce an invalid event: ${checked.error.message}`, {
          details: { topic: topic.name, ...checked.error.details },
        });
      }
    }
    return {
      key: topic.keyOf(event as Envelope),
      value: encodeEvent(event as Envelope),
      headers: { [CONTENT_TYPE_HEADER]: CLOUDEVENTS_CONTENT_TYPE },
    };
  }

  /** Sends events to one topic; resolves with where each landed, in the order given. */
  async send<T extends TopicSpec>(topic: T, events: readonly TopicEventInput<T>[]): Promise<Acknowledged[]> {
    return this.sendBatches([{ topic, events }]);
  }

  /** Sends to several topics in one produce request (e.g. an entity event and a command result). */
  async sendBatches(batches: readonly OutgoingBatch[]): Promise<Acknowledged[]> {
    const topicMessages = batches
      .filter((batch) => batch.events.length > 0)
      .map((batch) => ({
        topic: this.names.name(batch.topic),
        messages: batch.events.map((event) => this.toMessage(batch.topic, event)),
      }));
    if (topicMessages.length === 0) return [];
    return this.sendRaw(topicMessages);
  }

  /**
   * Sends pre-encoded records (dead letters, benchmarks, tests that need malformed bytes); resolves once Kafka has
   * acknowledged all of them, with where each landed, in the order given.
   */
  sendRaw(topicMessages: readonly TopicRecords[]): Promise<Acknowledged[]> {
    const bytes = topicMessages.reduce((sum, { messages }) => sum + messages.reduce((total, message) => total + byteLength(message.value), 0), 0);
    return new Promise((resolve, reject) => {
      this.queue.push({ topicMessages, bytes, resolve, reject });
      this.flushing ??= this.flush().finally(() => {
        this.flushing = undefined;
      });
    });
  }

  /** Sends what is queued, one request at a time, until the queue is empty. */
  private async flush(): Promise<void> {
    // Let the sends made in this turn of the event loop join the first request.
    await Promise.resolve();
    while (this.queue.length > 0) {
      let bytes = 0;
      let take = 0;
      while (take < this.queue.length && (take === 0 || bytes + this.queue[take]!.bytes <= MAX_REQUEST_BYTES)) {
        bytes += this.queue[take]!.bytes;
        take += 1;
      }
      const riding = this.queue.splice(0, take);
      await this.request(riding);
    }
  }

  /** One produce request for the records of `riding`; each sender learns its records' offsets, or the error. */
  private async request(riding: readonly Pending[]): Promise<void> {
    const merged = new Map<string, RawRecord[]>();
    for (const pending of riding) {
      for (const { topic, messages } of pending.topicMessages) {
        const list = merged.get(topic) ?? [];
        // Fresh objects: the same record object given twice must still get two partitions' worth of bookkeeping.
        for (const message of messages) list.push({ ...message });
        merged.set(topic, list);
      }
    }
    let metadata;
    try {
      metadata = await this.producer.sendBatch({
        acks: -1,
        compression: this.compression,
        topicMessages: [...merged].map(([topic, messages]) => ({ topic, messages })),
      });
    } catch (cause) {
      const error = new KafkaError('KFK_PRODUCE_FAILED', `produce failed: ${(cause as Error).message}`, {
        details: { topics: [...merged.keys()] },
        cause,
      });
      for (const pending of riding) pending.reject(error);
      return;
    }
    // A partition's records were appended in the order sent, from its base offset on.
    const base = new Map(metadata.map((entry) => [`${entry.topicName}/${entry.partition}`, BigInt(entry.baseOffset ?? '0')]));
    const next = new Map<string, bigint>();
    const cursor = new Map<string, number>();
    for (const pending of riding) {
      const acknowledged: Acknowledged[] = [];
      for (const { topic, messages } of pending.topicMessages) {
        const from = cursor.get(topic) ?? 0;
        const count = messages.length;
        for (const message of merged.get(topic)!.slice(from, from + count)) {
          const partition = this.partitionOf.get(message) ?? -1;
          const key = `${topic}/${partition}`;
          const offset = next.get(key) ?? base.get(key) ?? -1n;
          next.set(key, offset + 1n);
          acknowledged.push({ topic, partition, offset: offset.toString() });
        }
        cursor.set(topic, from + count);
      }
      pending.resolve(acknowledged);
    }
  }
}
