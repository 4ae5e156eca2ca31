import { topics, type Envelope } from '@switchyard/events';
import type { EventProducer, KafkaAdmin, KafkaLogger } from '@switchyard/kafka';
import { waitFor, type TestTopics } from '@switchyard/testkit';
import type pg from 'pg';
import { describe, expect } from 'vitest';
import { createPool } from '../src/db.js';
import { readOffsets } from '../src/offsets.js';
import { projections } from '../src/projections/index.js';
import { rebuildProjection } from '../src/rebuild.js';
import { entityMismatches, envelopeOf, readEntities } from './support/db.js';
import { EntityLoad } from './support/load.js';
import { change } from './support/model.js';
import { rebuildCommand, rebuildRows, shadowTables } from './support/rebuild.js';
import { startWorker, test, waitUntilCaughtUp } from './support/worker.js';

const RETRY = { initialMs: 100, maxMs: 1000 };

/** A logger for an in-process rebuild that keeps what it says and lets a test act on one message. */
function recordingLogger(on: (message: string) => void = () => undefined) {
  const lines: { level: string; message: string; fields: object }[] = [];
  const log = (level: string) => (fields: object, message: string) => {
    lines.push({ level, message, fields });
    on(message);
  };
  const logger: KafkaLogger = { debug: () => undefined, info: log('info'), warn: log('warn'), error: log('error') };
  return { logger, lines };
}

/** Stores the given positions as the live worker would have, in this cluster. */
async function storePositions(pool: pg.Pool, topic: string, cluster: string | null, positions: readonly { partition: number; next: string }[]) {
  for (const { partition, next } of positions) {
    await pool.query(
      `INSERT INTO sync_offsets (projection, topic, partition, next_offset, kafka_cluster) VALUES ('entities', $1, $2, $3, $4)
       ON CONFLICT (projection, topic, partition) DO UPDATE SET next_offset = excluded.next_offset, kafka_cluster = excluded.kafka_cluster`,
      [topic, partition, next, cluster],
    );
  }
}

/** Newer changes of one entity (`acme/widgets#<n>`, as the load names them), all on that entity's partition. */
function laterChanges(entityId: string, count: number): Envelope[] {
  const entity = Number(entityId.split('#')[1]);
  return Array.from({ length: count }, (_, i) => {
    const later = change(entity, 200_000_000 + i, i, false, `later-${entityId}-${i}`);
    const state = { id: entity, number: entity, title: `later ${i}`, state: 'open', labels: [], created_at: '2026-11-24T00:00:00Z', updated_at: '2033-01-01T00:00:00Z' };
    return envelopeOf({ ...later, state });
  });
}

/** 600 entity events on this test's entities topic: the topic, the load, this cluster's id and the logs' ends. */
async function seedEntities({ topics: t, producer, admin }: { topics: TestTopics; producer: EventProducer; admin: KafkaAdmin }, seed: number) {
  const entities = t.name(topics.entities);
  const load = new EntityLoad(200, seed);
  await producer.send(topics.entities, load.next(600) as never);
  const ends = (await admin.partitionOffsets(entities)).sort((a, b) => a.partition - b.partition);
  return { entities, load, cluster: await admin.clusterId(), ends };
}

describe('rebuild bounds', () => {
  test('a live position of another Kafka cluster fails the rebuild at once, naming both clusters and the partition; the live table is untouched', { timeout: 120000 }, async ({
    env,
    topics: t,
    producer,
    admin,
    database,
    collect,
  }) => {
    const entities = t.name(topics.entities);
    const load = new EntityLoad(300, 81);
    const worker = await startWorker(env);
    try {
      await producer.send(topics.entities, load.next(1000) as never);
      await waitUntilCaughtUp(database.pool, admin, 'entities', [entities]);
      const cluster = await admin.clusterId();
      // A worker of another deployment, reading another Kafka cluster, writes its position of partition 2 here.
      await database.pool.query(
        "UPDATE sync_offsets SET next_offset = 987654, kafka_cluster = 'kafka-cluster-of-staging' WHERE projection = 'entities' AND topic = $1 AND partition = 2",
        [entities],
      );
      const before = await readEntities(database.pool);

      const results = await collect(topics.commandResults);
      const command = rebuildCommand('entities');
      await producer.send(topics.commands, [command]);
      const accepted = await results.waitForEvent((event) => event.data.commandId === command.id && event.data.status === 'accepted', { timeoutMs: 30000 });
      const failed = await results.waitForEvent((event) => event.data.commandId === command.id && event.data.status === 'failed', { timeoutMs: 30000 });
      const tookMs = Date.parse(failed.time) - Date.parse(accepted.time);
      console.log(`rebuild against another cluster's position: failed ${tookMs} ms after it was accepted`);
      expect(tookMs).toBeLessThan(5000);
      expect(failed.data.error).toMatchObject({ code: 'SYNC_DATABASE_IN_USE', retriable: false });
      const message = failed.data.error?.message ?? '';
      expect(message).toContain(`${entities}/2`);
      expect(message).toContain('kafka-cluster-of-staging');
      expect(message).toContain(cluster);
      expect(message).toContain('another deployment is writing to this database');

      expect(await readEntities(database.pool)).toEqual(before);
      expect(await shadowTables(database.pool)).toEqual([]);
      expect(await rebuildRows(database.pool)).toEqual([{ command_id: command.id, status: 'failed', error: message, error_code: 'SYNC_DATABASE_IN_USE' }]);
    } finally {
      expect(await worker.stop()).toBe(0);
    }
  });

  test('a swap the shadow cannot complete gives up after swapTimeoutMs, naming the partition behind with both positions; nothing is swapped or left', { timeout: 120000 }, async ({
    env,
    kafka,
    topics: t,
    producer,
    admin,
    database,
  }) => {
    const { entities, cluster, ends } = await seedEntities({ topics: t, producer, admin }, 91);
    // This test plays the live worker: it has applied the whole log (its table stays empty, so a swap would show)…
    await storePositions(database.pool, entities, cluster, ends.map(({ partition, high }) => ({ partition, next: high })));
    // …and is in the middle of a batch on every partition, holding their positions.
    const liveBatch = await database.pool.connect();
    const holder = await database.pool.connect();
    const rebuildPool = createPool(env.databaseUrl, 6);
    try {
      await liveBatch.query('BEGIN');
      await liveBatch.query("SELECT * FROM sync_offsets WHERE projection = 'entities' FOR UPDATE");

      let caughtUpAt = 0;
      let stall: Promise<{ partition: number; shadow: string; live: string }> | undefined;
      const { logger } = recordingLogger((message) => {
        if (message !== 'rebuild caught up with the log; swapping') return;
        caughtUpAt = Date.now();
        // Once the shadow has caught up: a session's open transaction holds one of its rows, and new events of that
        // entity arrive, which the live worker applies, committing its batch. The shadow blocks on that row.
        stall = (async () => {
          await holder.query('BEGIN');
          const { rows } = await holder.query<{ entity_id: string; kafka_partition: number }>(
            'SELECT entity_id, kafka_partition FROM entities__rebuild ORDER BY entity_id LIMIT 1 FOR UPDATE',
          );
          const { entity_id: entityId, kafka_partition: partition } = rows[0]!;
          await producer.send(topics.entities, laterChanges(entityId, 5) as never);
          const high = (await admin.partitionOffsets(entities)).find((end) => end.partition === partition)!.high;
          await liveBatch.query("UPDATE sync_offsets SET next_offset = $3 WHERE projection = 'entities' AND topic = $1 AND partition = $2", [entities, partition, high]);
          await liveBatch.query('COMMIT');
          return { partition, shadow: ends.find((end) => end.partition === partition)!.high, live: high };
        })();
        // Awaited below; a failure here is reported there, not as an unhandled rejection meanwhile.
        stall.catch(() => undefined);
      });

      const rebuild = rebuildProjection({
        pool: rebuildPool,
        kafka,
        names: t.names,
        logger,
        projection: projections.entities,
        retry: RETRY,
        swapTimeoutMs: 3000,
        swapWaitMs: 300,
      }).then(
        () => undefined,
        (error: unknown) => ({ error: error as Error & { code?: string }, at: Date.now() }),
      );
      // Giving up, the rebuild drops its shadow table, which waits for the session holding it: let go then.
      await waitFor(
        async () => {
          const { rowCount } = await database.pool.query(
            "SELECT 1 FROM pg_locks l JOIN pg_class c ON c.oid = l.relation WHERE c.relname = 'entities__rebuild' AND l.mode = 'AccessExclusiveLock' AND NOT l.granted",
          );
          return (rowCount ?? 0) > 0;
        },
        { timeoutMs: 60000, what: 'the rebuild to drop its shadow table' },
      );
      await holder.query('ROLLBACK');
      const outcome = await rebuild;
      const stalled = await stall!;

      expect(outcome?.error.code).toBe('SYNC_REBUILD_FAILED');
      expect(outcome?.error.message).toContain('the swap did not complete within 3000 ms (SYNC_REBUILD_SWAP_TIMEOUT_MS)');
      expect(outcome?.error.message).toContain(`${entities}/${stalled.partition} (live ${stalled.live}, shadow ${stalled.shadow})`);
      const gaveUpAfterMs = outcome!.at - caughtUpAt;
      console.log(`swap bound 3000 ms: gave up ${gaveUpAfterMs} ms after catching up`);
      expect(gaveUpAfterMs).toBeGreaterThanOrEqual(3000);
      expect(gaveUpAfterMs).toBeLessThan(8000);

      // Nothing swapped, nothing left.
      expect(await shadowTables(database.pool)).toEqual([]);
      expect((await readEntities(database.pool)).size).toBe(0);
      const positions = await readOffsets(database.pool, 'entities');
      expect(positions.map((row) => [row.partition, row.nextOffset.toString()])).toEqual(
        ends.map((end) => [end.partition, end.partition === stalled.partition ? stalled.live : end.high]),
      );
      expect(await rebuildRows(database.pool)).toEqual([{ command_id: null, status: 'failed', error: outcome?.error.message, error_code: 'SYNC_REBUILD_FAILED' }]);
    } finally {
      await liveBatch.query('ROLLBACK').catch(() => undefined);
      await holder.query('ROLLBACK').catch(() => undefined);
      liveBatch.release();
      holder.release();
      await rebuildPool.end();
    }
  });

  test('live positions that are not this log’s (beyond the partition’s end, or of no recorded cluster) are not waited for: the swap replaces them with the shadow’s', { timeout: 120000 }, async ({
    kafka,
    topics: t,
    producer,
    admin,
    database,
    env,
  }) => {
    const { entities, load, cluster, ends } = await seedEntities({ topics: t, producer, admin }, 101);
    const [beyond, unrecorded, ...rest] = ends;
    // Partition `beyond` holds a position past its log's end (the topic was recreated); `unrecorded` one stored before
    // clusters were recorded; the rest this log's ends.
    await storePositions(database.pool, entities, cluster, [{ partition: beyond!.partition, next: String(Number(beyond!.high) + 5000) }]);
    await storePositions(database.pool, entities, null, [{ partition: unrecorded!.partition, next: String(Number(unrecorded!.high) + 7) }]);
    await storePositions(database.pool, entities, cluster, rest.map(({ partition, high }) => ({ partition, next: high })));

    const rebuildPool = createPool(env.databaseUrl, 6);
    const { logger, lines } = recordingLogger();
    try {
      const report = await rebuildProjection({ pool: rebuildPool, kafka, names: t.names, logger, projection: projections.entities, retry: RETRY, swapTimeoutMs: 5000 });
      expect(report.events).toBe(600);
      expect(entityMismatches(load.model(), await readEntities(database.pool))).toEqual([]);
      const positions = await database.pool.query<{ partition: number; next_offset: string; kafka_cluster: string }>(
        "SELECT partition, next_offset, kafka_cluster FROM sync_offsets WHERE projection = 'entities' ORDER BY partition",
      );
      expect(positions.rows).toEqual(ends.map((end) => ({ partition: end.partition, next_offset: end.high, kafka_cluster: cluster })));
      const replaced = lines.find((line) => line.level === 'warn' && line.message.startsWith("live positions that were not this log's"));
      expect((replaced?.fields as { replaced?: string[] } | undefined)?.replaced).toEqual([
        `${entities}/${beyond!.partition} (stored ${Number(beyond!.high) + 5000}, cluster ${cluster}; now ${beyond!.high})`,
        `${entities}/${unrecorded!.partition} (stored ${Number(unrecorded!.high) + 7}, cluster unrecorded; now ${unrecorded!.high})`,
      ]);
    } finally {
      await rebuildPool.end();
    }
  });
});
