import { createEvent, entityKey, sourceVersions, topics, type TopicEventInput } from '@switchyard/events';
import { test, testLogger, uniqueName, waitFor } from '@switchyard/testkit';
import { describe, expect } from 'vitest';
import { DeadLetters, EventConsumer, KafkaAdmin, KafkaError, TopicNames, type ConsumedRecord } from '../src/index.js';

function issueEvent(number: number, title: string): TopicEventInput<typeof topics.entities> {
  const updatedAt = '2026-11-24T05:00:00Z';
  const version = sourceVersions.githubIssue({ updated_at: updatedAt }, 1795496207044000n + BigInt(number));
  return createEvent({
    type: 'github.issue.upserted',
    source: 'test',
    subject: entityKey('github', 'issue', `acme/widgets#${number}`),
    entityVersion: version,
    data: {
      source: 'github',
      entityType: 'issue',
      entityId: `acme/widgets#${number}`,
      version,
      origin: { kind: 'poll', id: 'run-1', connection: 'github' },
      state: { id: number, number, title, state: 'open', labels: [], created_at: updatedAt, updated_at: updatedAt },
    },
  });
}

describe('typed producer and consumer', () => {
  test('keys entity events by entity key and decodes them against the catalog', async ({ kafka, topics: t, producer, collect }) => {
    await producer.send(topics.entities, [issueEvent(1, 'first'), issueEvent(2, 'second')]);
    const collector = await collect(topics.entities);
    const records = await collector.waitForCount(2);
    expect(records.map((record) => record.key?.toString()).sort()).toEqual([
      'github:issue:acme/widgets#1',
      'github:issue:acme/widgets#2',
    ]);
    expect(records.every((record) => record.decoded.ok)).toBe(true);
    expect(collector.events.map((event) => (event.data.state as { title: string } | null)?.title).sort()).toEqual([
      'first',
      'second',
    ]);
    expect(t.prefix).not.toBe('switchyard.');
    expect(kafka).toBeDefined();
  });

  test('refuses to produce an event that breaks its schema', async ({ producer }) => {
    const bad = issueEvent(3, 'x');
    (bad.data.state as { number: number }).number = -1;
    await expect(producer.send(topics.entities, [bad])).rejects.toMatchObject({
      code: 'KFK_INVALID_EVENT',
      details: { field: 'data.state.number' },
    });
    await expect(producer.send(topics.entities, [bad])).rejects.toBeInstanceOf(KafkaError);
  });

  test('sends made at once share produce requests, and each learns the exact offset of every record it sent', async ({ topics: t, producer, collect }) => {
    // 40 callers at once on topics just created (whose partitions may still refuse a first write): the producer
    // coalesces them into few requests, one in flight at a time.
    const sends = await Promise.all(
      Array.from({ length: 40 }, (_, caller) =>
        producer.sendBatches([
          { topic: topics.entities, events: Array.from({ length: 25 }, (_, index) => issueEvent(1000 + caller * 25 + index, `caller ${caller}`)) },
          { topic: topics.commandResults, events: [] },
        ]),
      ),
    );
    const collector = await collect(topics.entities);
    const records = await collector.waitForCount(1000);
    const at = new Map(records.map((record) => [`${record.partition}/${record.offset}`, record]));
    for (const [caller, acknowledged] of sends.entries()) {
      expect(acknowledged).toHaveLength(25);
      acknowledged.forEach((ack, index) => {
        expect(ack.topic).toBe(t.name(topics.entities));
        const record = at.get(`${ack.partition}/${ack.offset}`);
        expect(record?.key?.toString()).toBe(`github:issue:acme/widgets#${1000 + caller * 25 + index}`);
      });
    }
    expect(new Set(sends.flat().map((ack) => `${ack.partition}/${ack.offset}`)).size).toBe(1000);
  });

  test('hands undecodable records to the handler with the reason, and dead-letters them with the original bytes', async ({
    kafka,
    topics: t,
    producer,
    collect,
  }) => {
    const entities = t.name(topics.entities);
    await producer.sendRaw([
      {
        topic: entities,
        messages: [
          { key: 'k1', value: 'not json', headers: {} },
          { key: 'k2', value: JSON.stringify({ specversion: '1.0', type: 'github.issue.upserted' }), headers: {} },
        ],
      },
    ]);
    await producer.send(topics.entities, [issueEvent(4, 'good')]);

    const seen: ConsumedRecord[] = [];
    const deadLetters = new DeadLetters(producer, t.names, { service: 'test', group: 'g' });
    const consumer = new EventConsumer(kafka, t.names, {
      groupId: uniqueName('g-'),
      topics: [topics.entities],
      fromBeginning: true,
      commitToKafka: true,
      logger: testLogger,
      onFatal: (error) => {
        throw error;
      },
    });
    await consumer.start(async (batch) => {
      seen.push(...batch.records);
      await deadLetters.send(
        batch.records.flatMap((record) =>
          record.decoded.ok ? [] : [{ record, why: { code: record.decoded.error.code, reason: record.decoded.error.message } }],
        ),
      );
      batch.markDone();
    });
    await waitFor(() => seen.length === 3, { what: 'three records' });
    await consumer.stop();

    const outcome = (key: string) => {
      const decoded = seen.find((candidate) => candidate.key?.toString() === key)?.decoded;
      if (decoded === undefined) return 'missing';
      return decoded.ok ? 'ok' : decoded.error.code;
    };
    expect([outcome('k1'), outcome('k2'), outcome('github:issue:acme/widgets#4')]).toEqual([
      'EVT_NOT_JSON',
      'EVT_INVALID_ENVELOPE',
      'ok',
    ]);
    const dlq = await collect(topics.deadLetters);
    const letters = await dlq.waitForCount(2);
    const letter = letters.find((record) => record.key?.toString() === 'k1');
    const first = letter?.decoded;
    expect(first?.ok).toBe(true);
    if (!first?.ok) return;
    expect(first.event.data.error.code).toBe('EVT_NOT_JSON');
    expect(Buffer.from(first.event.data.original.value ?? '', 'base64').toString()).toBe('not json');
    expect(first.event.data.original).toMatchObject({ topic: entities, partition: expect.any(Number), offset: '0' });
  });
});

describe('stopping', () => {
  test('a stop that comes while the consumer is starting leaves no member in the group and nothing consumed', async ({ kafka, topics: t, producer }) => {
    await producer.send(topics.entities, [issueEvent(7, 'never read')]);
    const groupId = uniqueName('g-stop-');
    const seen: ConsumedRecord[] = [];
    const consumer = new EventConsumer(kafka, t.names, {
      groupId,
      topics: [topics.entities],
      fromBeginning: true,
      commitToKafka: true,
      logger: testLogger,
      onFatal: (error) => {
        throw error;
      },
    });
    // As a service's shutdown does when the signal comes in the middle of its start.
    const starting = consumer.start(async (batch) => {
      seen.push(...batch.records);
      batch.markDone();
    });
    await consumer.stop();
    await starting;
    expect(consumer.isJoined).toBe(false);
    const admin = kafka.admin();
    await admin.connect();
    try {
      // Long enough for a consumer that started anyway to join and fetch.
      await new Promise((resolve) => setTimeout(resolve, 3000));
      const { groups } = await admin.describeGroups([groupId]);
      expect(groups[0]?.members ?? []).toEqual([]);
      expect(seen).toEqual([]);
    } finally {
      await admin.deleteGroups([groupId]).catch(() => undefined);
      await admin.disconnect();
    }
  });
});

describe('topic provisioning', () => {
  test('creates what is missing, is idempotent, and reports config drift without overwriting it', async ({ kafka }) => {
    const names = new TopicNames(`${uniqueName('p')}.`);
    const admin = new KafkaAdmin(kafka, names, testLogger);
    const raw = kafka.admin();
    await admin.connect();
    await raw.connect();
    try {
      // Someone created the entities topic by hand, with the wrong cleanup policy.
      await raw.createTopics({ topics: [{ topic: names.name(topics.entities), numPartitions: 6, configEntries: [{ name: 'cleanup.policy', value: 'delete' }] }] });
      const first = await admin.provision();
      expect(first.created).toHaveLength(Object.keys(topics).length - 1);
      expect(first.drifted).toEqual([
        { topic: names.name(topics.entities), config: 'cleanup.policy', expected: 'compact', actual: 'delete' },
        expect.objectContaining({ topic: names.name(topics.entities), config: 'min.compaction.lag.ms', expected: '3600000' }),
      ]);
      const again = await admin.provision();
      expect(again.created).toEqual([]);
      expect(again.unchanged).toHaveLength(Object.keys(topics).length);
      expect(again.drifted.map((drift) => drift.config)).toEqual(['cleanup.policy', 'min.compaction.lag.ms']);
    } finally {
      await admin.deleteTopics(Object.values(topics).map((spec) => names.name(spec)));
      await raw.disconnect();
      await admin.disconnect();
    }
  });

  test('deletes what exists among the names it is given and takes a topic already gone as done', async ({ kafka }) => {
    const names = new TopicNames(`${uniqueName('d')}.`);
    const admin = new KafkaAdmin(kafka, names, testLogger);
    await admin.connect();
    try {
      const here = names.name(topics.commands);
      const gone = names.name(topics.commandResults);
      await admin.provision();
      await admin.deleteTopics([gone]);
      // `gone` no longer exists: kafkajs alone retries its delete into UNKNOWN_TOPIC_OR_PARTITION until it gives up.
      await admin.deleteTopics([here, gone]);
      await waitFor(async () => {
        const listed = await admin.listTopics();
        return !listed.includes(here) && !listed.includes(gone);
      }, { timeoutMs: 10_000, what: 'both topics gone from the metadata' });
    } finally {
      await admin.deleteTopics(Object.values(topics).map((spec) => names.name(spec)));
      await admin.disconnect();
    }
  });
});
