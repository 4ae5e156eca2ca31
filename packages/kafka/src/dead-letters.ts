import { CLOUDEVENTS_CONTENT_TYPE, CONTENT_TYPE_HEADER, createEvent, encodeEvent, topics, type DeadLetterData, type Envelope } from '@switchyard/events';
import type { ConsumedRecord } from './consumer.js';
import type { EventProducer } from './producer.js';
import type { TopicNames } from './topic-names.js';

export interface DeadLetterReason {
  code: string;
  reason: string;
  field?: string | undefined;
}

function base64(value: Buffer | string | null | undefined): string | null {
  if (value === null || value === undefined) return null;
  return (typeof value === 'string' ? Buffer.from(value, 'utf8') : value).toString('base64');
}

/**
 * Parks records a consumer cannot use on the dead-letter topic — original bytes, position, error code and reason —
 * so the partition keeps flowing and nothing is lost. Sends wait for the broker's acknowledgement: a caller that
 * then moves past the record knows the dead letter is durable.
 */
export class DeadLetters {
  private readonly producer: EventProducer;
  private readonly names: TopicNames;
  private readonly consumer: { service: string; group: string };

  constructor(producer: EventProducer, names: TopicNames, consumer: { service: string; group: string }) {
    this.producer = producer;
    this.names = names;
    this.consumer = consumer;
  }

  build(record: ConsumedRecord, why: DeadLetterReason): Envelope<'switchyard.record.dead_lettered', DeadLetterData> {
    const headers: Record<string, string> = {};
    for (const [name, value] of Object.entries(record.headers)) {
      const first = Array.isArray(value) ? value[0] : value;
      const encoded = base64(first);
      if (encoded !== null) headers[name] = encoded;
    }
    return createEvent({
      type: 'switchyard.record.dead_lettered',
      source: `switchyard/${this.consumer.service}`,
      subject: `${record.topic}/${record.partition}/${record.offset}`,
      data: {
        original: {
          topic: record.topic,
          partition: record.partition,
          offset: record.offset,
          timestamp: record.timestamp,
          key: base64(record.key),
          value: base64(record.value),
          headers,
        },
        error: why.field === undefined ? { code: why.code, reason: why.reason } : { ...why, field: why.field },
        consumer: this.consumer,
      },
    });
  }

  async send(entries: readonly { record: ConsumedRecord; why: DeadLetterReason }[]): Promise<void> {
    if (entries.length === 0) return;
    await this.producer.sendRaw([
      {
        topic: this.names.name(topics.deadLetters),
        messages: entries.map(({ record, why }) => ({
          key: record.key,
          value: encodeEvent(this.build(record, why)),
          headers: { [CONTENT_TYPE_HEADER]: CLOUDEVENTS_CONTENT_TYPE },
        })),
      },
    ]);
  }
}
