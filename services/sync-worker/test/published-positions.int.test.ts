import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { topics, type Envelope } from '@switchyard/events';
import { KafkaAdmin } from '@switchyard/kafka';
import { testLogger, waitFor } from '@switchyard/testkit';
import { describe, expect } from 'vitest';
import { envelopeOf } from './support/db.js';
import { commandResults, EntityLoad, prng, produceInChunks } from './support/load.js';
import { change } from './support/model.js';
import { metricValue, PositionReader, positionKey, readerCheckingAhead, storedPosition } from './support/positions.js';
import { CLI, startWorker, test, waitUntilCaughtUp } from './support/worker.js';

const run = promisify(execFile);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Issue `id` at its `step`th state: a later step has a newer version. */
function issueEvent(id: number, step: number): Envelope {
  const updatedAt = new Date((1_700_000_000 + step) * 1000).toISOString().replace('.000', '');
  const state = { id, number: id, title: `issue ${id}, step ${step}`, state: 'open', labels: [], created_at: '2023-11-14T00:00:00Z', updated_at: updatedAt };
  return envelopeOf({ ...change(id, step, 0, false, `issue-${id}-${step}`), state });
}

describe('committed positions on Kafka', () => {
  test('every position is published after its commit, and the latest per partition equals sync_offsets', { timeout: 120000 }, async ({
    env,
    kafka,
    topics: t,
    producer,
    admin,
    database,
  }) => {
    const cluster = await admin.clusterId();
    const { reader, ahead } = await readerCheckingAhead(kafka, t.names, database.pool);
    const worker = await startWorker(env);
    try {
      const load = new EntityLoad(800, 71);
      for (let i = 0; i < 12; i += 1) {
        await producer.send(topics.entities, load.next(250) as never);
        await sleep(50);
      }
      await produceInChunks(producer, topics.commandResults, commandResults(400, 72, 'pos'));
      await waitUntilCaughtUp(database.pool, admin, 'entities', [t.name(topics.entities)]);
      await waitUntilCaughtUp(database.pool, admin, 'command_log', [t.name(topics.commandResults)]);
      await reader.waitUntilMatches(database.pool, 'entities');
      await reader.waitUntilMatches(database.pool, 'command_log');

      expect(ahead).toEqual([]);
      const byKey = reader.byKey();
      const partitions = (spec: typeof topics.entities | typeof topics.commandResults) =>
        Array.from({ length: spec.partitions }, (_, partition) => positionKey(spec === topics.entities ? 'entities' : 'command_log', t.name(spec), partition));
      // Every partition advanced (the load covers them all), and each was published.
      expect([...byKey.keys()].sort()).toEqual([...partitions(topics.entities), ...partitions(topics.commandResults)].sort());
      for (const [key, events] of byKey) {
        const offsets = events.map((event) => BigInt(event.data.nextOffset));
        // One worker owns every partition throughout: its positions only grow.
        expect(offsets, key).toEqual([...offsets].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0)));
        for (const event of events) expect(event).toMatchObject({ source: 'switchyard/sync-worker', subject: key, data: { cluster } });
      }
      for (const record of reader.records) expect(record.key?.toString()).toBe(record.decoded.ok ? record.decoded.event.subject : '');

      const metrics = await fetch(`${worker.url}/metrics`).then((response) => response.text());
      expect(metricValue(metrics, 'switchyard_sync_positions_published_total', 'projection="entities"')).toBeGreaterThanOrEqual(topics.entities.partitions);
      expect(metricValue(metrics, 'switchyard_sync_positions_published_total', 'projection="command_log"')).toBeGreaterThanOrEqual(topics.commandResults.partitions);
      expect(metricValue(metrics, 'switchyard_sync_position_publish_failures_total')).toBe(0);
      console.log(`published positions: ${reader.records.length} for ${byKey.size} partitions`);
    } finally {
      await reader.stop();
      expect(await worker.stop()).toBe(0);
    }
  });

  test('while partitions move between workers (1 → 2 → 1) the latest published positions still end equal to sync_offsets', { timeout: 120000 }, async ({
    env,
    kafka,
    topics: t,
    producer,
    admin,
    database,
  }) => {
    const { reader, ahead } = await readerCheckingAhead(kafka, t.names, database.pool);
    const load = new EntityLoad(1000, 77);
    let producing = true;
    const production = (async () => {
      while (producing) {
        await producer.send(topics.entities, load.next(150) as never);
        await sleep(100);
      }
    })();
    const first = await startWorker(env);
    try {
      await sleep(1500);
      const second = await startWorker(env);
      await sleep(3000);
      expect(await second.stop()).toBe(0);
      await sleep(2000);
      producing = false;
      await production;
      await waitUntilCaughtUp(database.pool, admin, 'entities', [t.name(topics.entities)]);
      await reader.waitUntilMatches(database.pool, 'entities');
      expect(ahead).toEqual([]);
    } finally {
      producing = false;
      await production;
      await reader.stop();
      expect(await first.stop()).toBe(0);
    }
  });

  test('a worker stopped mid-load publishes the positions of its last commits before it exits', { timeout: 120000 }, async ({
    env,
    kafka,
    topics: t,
    producer,
    admin,
    database,
  }) => {
    const load = new EntityLoad(2000, 78);
    let producing = true;
    const production = (async () => {
      while (producing) {
        await producer.send(topics.entities, load.next(300) as never);
        await sleep(20);
      }
    })();
    const reader = await new PositionReader(kafka, t.names).start();
    try {
      const worker = await startWorker(env);
      // Stopped while events keep arriving: the batches in flight commit, and their positions go out on the way down.
      await sleep(1500);
      expect(await worker.stop()).toBe(0);
      producing = false;
      await production;
      const ends = (await admin.partitionOffsets(t.name(topics.entities))).reduce((sum, end) => sum + Number(end.high), 0);
      const { rows } = await database.pool.query<{ n: string }>("SELECT coalesce(sum(next_offset), 0) AS n FROM sync_offsets WHERE projection = 'entities'");
      expect(Number(rows[0]?.n)).toBeGreaterThan(0);
      expect(Number(rows[0]?.n)).toBeLessThan(ends);
      // No worker runs any more: whatever matches now was published by the one that stopped.
      await reader.waitUntilMatches(database.pool, 'entities', 15000);
    } finally {
      producing = false;
      await production;
      await reader.stop();
    }
  });

  test('a reader waiting for the position of each of 200 produced events finds its row the moment the position passes it', { timeout: 120000 }, async ({
    env,
    kafka,
    topics: t,
    producer,
    admin,
    database,
  }) => {
    const cluster = await admin.clusterId();
    const entities = t.name(topics.entities);
    const reader = await new PositionReader(kafka, t.names).start();
    const worker = await startWorker(env);
    try {
      // 100 issues, each created and then changed: every event's version is newer than the one before it.
      const random = prng(73);
      const shuffle = <T>(items: T[]) => items.map((item) => ({ item, at: random() })).sort((a, b) => a.at - b.at).map(({ item }) => item);
      const ids = Array.from({ length: 100 }, (_, index) => index + 1);
      const events: Envelope[] = [
        ...shuffle(ids).map((id) => issueEvent(id, 1)),
        ...shuffle(ids).map((id) => issueEvent(id, 2)),
      ];

      const checks: Promise<{ waitedMs: number; wrong?: string }>[] = [];
      for (let at = 0; at < events.length; ) {
        const wave = events.slice(at, at + 1 + Math.floor(random() * 8));
        at += wave.length;
        const acknowledged = await producer.send(topics.entities, wave as never);
        const ackedAt = performance.now();
        wave.forEach((event, index) => {
          const where = acknowledged[index]!;
          const data = event.data as { entityId: string; version: string };
          checks.push(
            (async () => {
              await reader.waitPast(positionKey('entities', entities, where.partition), where.offset, cluster);
              // Right away: the row must already hold this event's state, or a newer one.
              const { rows } = await database.pool.query<{ version: string }>(
                "SELECT version FROM entities WHERE source = 'github' AND entity_type = 'issue' AND entity_id = $1",
                [data.entityId],
              );
              const waitedMs = performance.now() - ackedAt;
              const version = rows[0]?.version;
              return version !== undefined && version >= data.version
                ? { waitedMs }
                : { waitedMs, wrong: `${event.id} at ${where.partition}/${where.offset}: row ${version ?? 'missing'}, event ${data.version}` };
            })(),
          );
        });
        await sleep(random() * 20);
      }
      const outcomes = await Promise.race([
        Promise.all(checks),
        sleep(30000).then(() => {
          throw new Error('some events never saw their position pass them');
        }),
      ]);
      expect(outcomes.flatMap((outcome) => (outcome.wrong === undefined ? [] : [outcome.wrong]))).toEqual([]);
      expect(outcomes).toHaveLength(200);
      const waited = outcomes.map((outcome) => outcome.waitedMs).sort((a, b) => a - b);
      const at = (q: number) => Math.round(waited[Math.min(waited.length - 1, Math.floor(q * waited.length))]!);
      console.log(`wait=projected through positions: acknowledged → position past the event p50 ${at(0.5)} ms, p99 ${at(0.99)} ms, max ${at(1)} ms`);
    } finally {
      await reader.stop();
      expect(await worker.stop()).toBe(0);
    }
  });

  test('after the topic is recreated the positions go down with the log, and the latest ones are the new log’s', { timeout: 120000 }, async ({
    env,
    kafka,
    topics: t,
    producer,
    admin,
    database,
  }) => {
    const cluster = await admin.clusterId();
    const entities = t.name(topics.entities);
    const load = new EntityLoad(200, 74);
    await producer.send(topics.entities, load.next(1500) as never);
    let worker = await startWorker(env);
    await waitUntilCaughtUp(database.pool, admin, 'entities', [entities]);
    expect(await worker.stop()).toBe(0);

    const provisioner = new KafkaAdmin(kafka, t.names, testLogger);
    await provisioner.connect();
    await provisioner.deleteTopics([entities]);
    await waitFor(async () => !(await provisioner.listTopics()).includes(entities), { timeoutMs: 30000, what: 'the topic to go' });
    await provisioner.provision();
    await provisioner.disconnect();
    await producer.send(topics.entities, load.next(120) as never);
    const ends = await admin.partitionOffsets(entities);

    const reader = await new PositionReader(kafka, t.names).start();
    worker = await startWorker(env);
    try {
      await waitFor(
        async () => {
          const positions = await Promise.all(ends.map((end) => storedPosition(database.pool, 'entities', entities, end.partition)));
          return ends.every((end, index) => positions[index] === BigInt(end.high));
        },
        { timeoutMs: 60000, what: 'positions at the new log ends' },
      );
      await reader.waitUntilMatches(database.pool, 'entities');
      for (const [key, events] of reader.byKey()) {
        const offsets = events.map((event) => BigInt(event.data.nextOffset));
        const last = offsets.at(-1)!;
        // The old log's (higher) positions came first; the reset published this log's, lower, in the same cluster.
        expect(offsets.some((offset) => offset > last), key).toBe(true);
        expect(events.at(-1)?.data.cluster).toBe(cluster);
      }
    } finally {
      await reader.stop();
      expect(await worker.stop()).toBe(0);
    }
  });

  test('a rebuild publishes the live positions after its swap', { timeout: 120000 }, async ({ env, kafka, topics: t, producer, admin, database }) => {
    const entities = t.name(topics.entities);
    await producer.send(topics.entities, new EntityLoad(300, 75).next(1200) as never);
    const worker = await startWorker(env);
    await waitUntilCaughtUp(database.pool, admin, 'entities', [entities]);
    const reader = await new PositionReader(kafka, t.names).start();
    try {
      await reader.waitUntilMatches(database.pool, 'entities');
      expect(await worker.stop()).toBe(0);
      const before = reader.records.length;

      // No worker runs, and nothing new is produced: whatever is published now comes from the rebuild.
      await run(process.execPath, [CLI, 'rebuild', 'entities'], {
        env: { PATH: process.env['PATH'] ?? '', KAFKA_BROKERS: env.brokers, TOPIC_PREFIX: env.prefix, DATABASE_URL: env.databaseUrl, LOG_LEVEL: 'warn' },
      });
      await waitFor(() => reader.records.length >= before + topics.entities.partitions, { timeoutMs: 15000, what: 'the positions after the swap' });
      const published = reader.records.slice(before).flatMap((record) => (record.decoded.ok ? [record.decoded.event.data] : []));
      expect(new Set(published.map((position) => position.partition)).size).toBe(topics.entities.partitions);
      for (const position of published) {
        expect(BigInt(position.nextOffset)).toBe(await storedPosition(database.pool, 'entities', entities, position.partition));
      }
      await reader.waitUntilMatches(database.pool, 'entities');
    } finally {
      await reader.stop();
    }
  });

  test('publishing failures do not stop projecting, and the latest positions go out once Kafka takes them again', { timeout: 150000 }, async ({
    env,
    kafka,
    topics: t,
    producer,
    admin,
    database,
  }) => {
    const entities = t.name(topics.entities);
    const positionsTopic = t.name(topics.projectionPositions);
    const load = new EntityLoad(300, 76);
    const worker = await startWorker(env, { LOG_LEVEL: 'info' });
    const provisioner = new KafkaAdmin(kafka, t.names, testLogger);
    await provisioner.connect();
    try {
      await producer.send(topics.entities, load.next(600) as never);
      await waitUntilCaughtUp(database.pool, admin, 'entities', [entities]);

      // The positions topic goes away: every publish fails until it is back.
      await provisioner.deleteTopics([positionsTopic]);
      await waitFor(async () => !(await provisioner.listTopics()).includes(positionsTopic), { timeoutMs: 30000, what: 'the positions topic to go' });
      for (let i = 0; i < 6; i += 1) {
        await producer.send(topics.entities, load.next(200) as never);
        await sleep(200);
      }
      await waitUntilCaughtUp(database.pool, admin, 'entities', [entities]);
      const failuresOf = async () =>
        metricValue(await fetch(`${worker.url}/metrics`).then((response) => response.text()), 'switchyard_sync_position_publish_failures_total');
      await waitFor(async () => (await failuresOf()) > 0, { timeoutMs: 60000, intervalMs: 500, what: 'a failed publish to be counted' });
      expect((await fetch(`${worker.url}/readyz`)).status).toBe(200);

      await provisioner.provision();
      const reader = await new PositionReader(kafka, t.names).start();
      try {
        await reader.waitUntilMatches(database.pool, 'entities', 60000);
      } finally {
        await reader.stop();
      }
      const messages = worker.logs().map((line) => line['msg']);
      expect(messages.filter((message) => message === 'publishing committed positions failed; projecting carries on, the latest positions are published again with backoff')).toHaveLength(1);
      expect(messages).toContain('publishing committed positions recovered');
      expect(worker.lines.filter((line) => line.includes('"level":"fatal"'))).toEqual([]);
    } finally {
      await provisioner.disconnect();
      expect(await worker.stop()).toBe(0);
    }
  });
});
