import { topicName, topics, type Envelope } from '@switchyard/events';
import { KafkaAdmin, type EventProducer } from '@switchyard/kafka';
import { testLogger, waitFor, type TestDatabase } from '@switchyard/testkit';
import { describe, expect } from 'vitest';
import { readOffsets } from '../src/offsets.js';
import { entityMismatches, readEntities } from './support/db.js';
import { EntityLoad } from './support/load.js';
import { startWorker, test, waitUntilCaughtUp, type WorkerEnv } from './support/worker.js';

/** A first load projected by a worker that then stops cleanly: positions stored, no member running. */
async function projectThenStop(
  { env, producer, admin, database }: { env: WorkerEnv; producer: EventProducer; admin: KafkaAdmin; database: TestDatabase },
  events: readonly Envelope[],
): Promise<void> {
  await producer.send(topics.entities, events as never);
  const worker = await startWorker(env);
  await waitUntilCaughtUp(database.pool, admin, 'entities', [topicName(topics.entities, env.prefix)]);
  expect(await worker.stop()).toBe(0);
}

describe('a topic recreated under stored positions', () => {
  test('positions beyond the end of the log are reset to its start, and the new events land', { timeout: 120000 }, async ({
    env,
    kafka,
    topics: t,
    producer,
    admin,
    database,
  }) => {
    const entities = t.name(topics.entities);
    const load = new EntityLoad(200, 51);
    await projectThenStop({ env, producer, admin, database }, load.next(1500));

    // The topic is deleted and created again (a new cluster, a reset): its log starts over at offset 0, while
    // Postgres still holds positions in the old one.
    const provisioner = new KafkaAdmin(kafka, t.names, testLogger);
    await provisioner.connect();
    await provisioner.deleteTopics([entities]);
    await waitFor(async () => !(await provisioner.listTopics()).includes(entities), { timeoutMs: 30000, what: 'the topic to go' });
    await provisioner.provision();
    await provisioner.disconnect();
    const before = await readOffsets(database.pool, 'entities');
    await producer.send(topics.entities, load.next(300) as never);
    const ends = await admin.partitionOffsets(entities);
    expect(before.some((row) => row.nextOffset > BigInt(ends.find((end) => end.partition === row.partition)?.high ?? '0'))).toBe(true);

    const worker = await startWorker(env);
    try {
      // "At or past the end" would be true of the stale positions already: wait for exactly the new ends.
      await waitFor(
        async () => {
          const positions = await readOffsets(database.pool, 'entities');
          return ends.every((end) => positions.find((row) => row.partition === end.partition)?.nextOffset === BigInt(end.high));
        },
        { timeoutMs: 60000, what: 'positions at the new log ends' },
      );
      // Every event ever produced, old log and new, folded in order: the table is their fold.
      expect(entityMismatches(load.model(), await readEntities(database.pool))).toEqual([]);
      const positions = await readOffsets(database.pool, 'entities');
      for (const row of positions) {
        expect(row.nextOffset).toBe(BigInt(ends.find((end) => end.partition === row.partition)?.high ?? '0'));
      }
      const metrics = await fetch(`${worker.url}/metrics`).then((response) => response.text());
      expect(metrics).toMatch(/switchyard_sync_position_resets_total\{projection="entities"[^}]*\} [1-9]/);
    } finally {
      expect(await worker.stop()).toBe(0);
    }
  });
});

describe('positions read from another Kafka cluster, or from an unrecorded one', () => {
  // A position stored before clusters were recorded (null) could be from any log: it is treated like another's.
  test.for([
    { stored: 'another-cluster', what: 'another cluster' },
    { stored: null as string | null, what: 'an unrecorded cluster' },
  ])('positions from $what are reset to the start of this cluster’s log, so its events land even where offsets look applied', { timeout: 120000 }, async ({ stored }, {
    env,
    topics: t,
    producer,
    admin,
    database,
  }) => {
    const entities = t.name(topics.entities);
    const load = new EntityLoad(150, 61);
    await projectThenStop({ env, producer, admin, database }, load.next(800));

    // New events arrive while the stored positions claim, on behalf of another cluster, that the log was applied
    // up to its current end: offsets alone would skip every one of them.
    await producer.send(topics.entities, load.next(200) as never);
    const ends = await admin.partitionOffsets(entities);
    for (const end of ends) {
      await database.pool.query(
        "UPDATE sync_offsets SET next_offset = $1, kafka_cluster = $4 WHERE projection = 'entities' AND topic = $2 AND partition = $3",
        [end.high, entities, end.partition, stored],
      );
    }

    const worker = await startWorker(env);
    try {
      await waitFor(async () => entityMismatches(load.model(), await readEntities(database.pool)).length === 0, {
        timeoutMs: 60000,
        what: 'the new events to land',
      });
      const { rows } = await database.pool.query<{ clusters: string[] }>(
        "SELECT array_agg(DISTINCT kafka_cluster) AS clusters FROM sync_offsets WHERE projection = 'entities'",
      );
      expect(rows[0]?.clusters).toHaveLength(1);
      expect(rows[0]?.clusters).not.toContain(stored);
      const metrics = await fetch(`${worker.url}/metrics`).then((response) => response.text());
      expect(metrics).toMatch(/switchyard_sync_position_resets_total\{projection="entities"[^}]*\} [1-9]/);
    } finally {
      expect(await worker.stop()).toBe(0);
    }
  });
});
