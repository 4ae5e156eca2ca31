import { randomUUID } from 'node:crypto';
import { kafkaVersion } from '@switchyard/infra';
import { test, testLogger, uniqueName, waitFor } from '@switchyard/testkit';
import { Partitioners } from 'kafkajs';
import { describe, expect } from 'vitest';
import { createKafka, KafkaAdmin, TopicNames } from '../src/index.js';

/**
 * What Switchyard needs from the broker through kafkajs 2.2.4 — the smoke test behind docs/adr/0001. Kafka 4
 * removed old protocol versions (KIP-896); this fails if a broker upgrade drops one kafkajs still speaks.
 */
describe(`kafkajs 2.2.4 against the broker (infra/kafka/pom.xml says Apache Kafka ${kafkaVersion()})`, () => {
  test('idempotent produce, group consume with commit, and a transaction with sendOffsets (commit and abort)', async ({ brokers }) => {
    const kafka = createKafka({ brokers: brokers.split(','), clientId: uniqueName('compat-'), logger: testLogger });
    const admin = new KafkaAdmin(kafka, new TopicNames(''), testLogger);
    const topic = uniqueName('compat-');
    const groupId = uniqueName('compat-group-');
    await admin.connect();
    const raw = kafka.admin();
    await raw.connect();
    const producer = kafka.producer({ idempotent: true, createPartitioner: Partitioners.DefaultPartitioner });
    const transactional = kafka.producer({ transactionalId: `compat-${randomUUID()}`, idempotent: true, maxInFlightRequests: 1 });
    const consumer = kafka.consumer({ groupId, readUncommitted: false });
    try {
      await raw.createTopics({ topics: [{ topic, numPartitions: 3 }] });
      await waitFor(async () => (await admin.partitionOffsets(topic)).length === 3, { what: 'the topic' });
      await producer.connect();
      await producer.send({ topic, acks: -1, messages: [{ key: 'a', value: 'plain-1' }, { key: 'b', value: 'plain-2' }] });

      await transactional.connect();
      const committed = await transactional.transaction();
      await committed.send({ topic, messages: [{ key: 'c', value: 'committed' }] });
      await committed.sendOffsets({ consumerGroupId: `${groupId}-tx`, topics: [{ topic, partitions: [{ partition: 0, offset: '1' }] }] });
      await committed.commit();
      const aborted = await transactional.transaction();
      await aborted.send({ topic, messages: [{ key: 'd', value: 'aborted' }] });
      await aborted.abort();

      const seen: string[] = [];
      await consumer.connect();
      await consumer.subscribe({ topics: [topic], fromBeginning: true });
      await consumer.run({
        autoCommit: false,
        eachMessage: async ({ message, partition }) => {
          seen.push(message.value?.toString() ?? '');
          await consumer.commitOffsets([{ topic, partition, offset: (BigInt(message.offset) + 1n).toString() }]);
        },
      });
      await waitFor(() => seen.length >= 3, { what: 'three visible records' });
      await new Promise((resolve) => setTimeout(resolve, 500));
      expect(seen.sort()).toEqual(['committed', 'plain-1', 'plain-2']);

      const groupOffsets = await raw.fetchOffsets({ groupId, topics: [topic] });
      const total = groupOffsets[0]?.partitions.reduce((sum, partition) => sum + Math.max(0, Number(partition.offset)), 0);
      expect(total).toBeGreaterThanOrEqual(3);
      const txOffsets = await raw.fetchOffsets({ groupId: `${groupId}-tx`, topics: [topic] });
      expect(txOffsets[0]?.partitions.find((partition) => partition.partition === 0)?.offset).toBe('1');
    } finally {
      await consumer.disconnect();
      await producer.disconnect();
      await transactional.disconnect();
      await raw.deleteTopics({ topics: [topic] }).catch(() => undefined);
      await raw.deleteGroups([groupId, `${groupId}-tx`]).catch(() => undefined);
      await raw.disconnect();
      await admin.disconnect();
    }
  });
});
