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

/** Where a produce request's records landed: per partition, the offset of the first one. */
export interface Acknowledged {
  readonly topic: string;
  readonly partition: number;
  readonly baseOffset: string;
}

export interface RawRecord {
  key: Buffer | string | null;
  value: Buffer | string | null;
  headers: Record<string, string | Buffer>;
}

/**
 * Produces catalog events: the Kafka key comes from the topic's `keyOf`, the value is the structured CloudEvent,
 * and sends wait for all in-sync replicas (acks = -1) with the idempotent producer, so a retried send never
 * duplicates a record.
 */
export class EventProducer {
  private readonly producer: Producer;
  private readonly names: TopicNames;
  private readonly validate: boolean;
  private readonly compression: CompressionTypes;
  private connected = false;

  constructor(kafka: Kafka, names: TopicNames, options: EventProducerOptions = {}) {
    this.producer = kafka.producer({
      idempotent: true,
      maxInFlightRequests: 5,
      createPartitioner: Partitioners.DefaultPartitioner,
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

  async disconnect(): Promise<void> {
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

  /** Sends events to one topic. */
  async send<T extends TopicSpec>(topic: T, events: readonly TopicEventInput<T>[]): Promise<Acknowledged[]> {
    return this.sendBatches([{ topic, events }]);
  }

  /** Sends to several topics in one produce request per broker (e.g. an entity event and a command result). */
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

  /** Sends pre-encoded records (dead letters, benchmarks, tests that need malformed bytes). */
  async sendRaw(topicMessages: readonly { topic: string; messages: readonly RawRecord[] }[]): Promise<Acknowledged[]> {
    try {
      const metadata = await this.producer.sendBatch({
        acks: -1,
        compression: this.compression,
        topicMessages: topicMessages.map(({ topic, messages }) => ({
          topic,
          messages: [...messages],
        })),
      });
      return metadata.map((entry) => ({ topic: entry.topicName, partition: entry.partition, baseOffset: entry.baseOffset ?? '0' }));
    } catch (cause) {
      throw new KafkaError('KFK_PRODUCE_FAILED', `produce failed: ${(cause as Error).message}`, {
        details: { topics: topicMessages.map((batch) => batch.topic) },
        cause,
      });
    }
  }
}
