import type { TopicEvent, TopicSpec } from '@switchyard/events';
import { EventConsumer, type ConsumedRecord, type Kafka, type KafkaLogger, type TopicNames } from '@switchyard/kafka';
import { uniqueName, waitFor, type WaitOptions } from './wait.js';

/** Reads a topic from the beginning into memory, for assertions. */
export class EventCollector<T extends TopicSpec> {
  readonly records: ConsumedRecord<TopicEvent<T>>[] = [];
  private readonly consumer: EventConsumer<T>;

  constructor(kafka: Kafka, names: TopicNames, topic: T, logger: KafkaLogger) {
    this.consumer = new EventConsumer(kafka, names, {
      groupId: uniqueName('collector-'),
      topics: [topic],
      fromBeginning: true,
      commitToKafka: false,
      maxWaitTimeMs: 100,
      logger,
      onFatal: (error) => {
        throw error;
      },
    });
  }

  async start(): Promise<this> {
    await this.consumer.start(async (batch) => {
      this.records.push(...batch.records);
      batch.markDone();
    });
    await waitFor(() => this.consumer.isJoined, { what: 'the collector to join its group' });
    return this;
  }

  /** The decoded events so far (records that did not decode are left out). */
  get events(): TopicEvent<T>[] {
    return this.records.flatMap((record) => (record.decoded.ok ? [record.decoded.event] : []));
  }

  async waitForEvent(
    predicate: (event: TopicEvent<T>) => boolean,
    options: WaitOptions = {},
  ): Promise<TopicEvent<T>> {
    return waitFor(() => this.events.find(predicate), { what: 'a matching event', ...options });
  }

  async waitForCount(count: number, options: WaitOptions = {}): Promise<ConsumedRecord<TopicEvent<T>>[]> {
    await waitFor(() => this.records.length >= count, { what: `${count} records`, ...options });
    return this.records;
  }

  async stop(): Promise<void> {
    await this.consumer.stop();
  }
}
