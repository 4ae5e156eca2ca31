import { topics } from '@switchyard/events';
import pg from 'pg';
import { defineBenchmark, type Comparison, type Metric } from '../benchmark.js';
import { inBatches, rowsOf, timedWrites, upsertWithCopy, writeWithCopy, writeWithUnnest, type EntityRow } from './baselines.js';
import { SyncBench, workerMetric } from './harness.js';
import { issueEvents } from './workload.js';

/** Where the worker found each entity's last event: entity id → [partition, offset]. */
async function placement(pool: pg.Pool): Promise<Map<string, [number, bigint]>> {
  const { rows } = await pool.query<{ entity_id: string; kafka_partition: number; kafka_offset: string }>(
    'SELECT entity_id, kafka_partition, kafka_offset FROM entities',
  );
  return new Map(rows.map((row) => [row.entity_id, [row.kafka_partition, BigInt(row.kafka_offset)]]));
}

function likeTheWorker(rows: EntityRow[], where: Map<string, [number, bigint]>): EntityRow[] {
  return rows
    .map((row) => {
      const [partition, offset] = where.get(row.entity_id) ?? [0, 0n];
      return { ...row, kafka_partition: partition, kafka_offset: offset };
    })
    .sort((a, b) => a.kafka_partition - b.kafka_partition || (a.kafka_offset < b.kafka_offset ? -1 : a.kafka_offset > b.kafka_offset ? 1 : 0));
}

/** Batches of at most `size` rows, never mixing partitions. */
function perPartitionBatches(rows: readonly EntityRow[], size: number): EntityRow[][] {
  const byPartition = new Map<number, EntityRow[]>();
  for (const row of rows) {
    const list = byPartition.get(row.kafka_partition) ?? [];
    if (list.length === 0) byPartition.set(row.kafka_partition, list);
    list.push(row);
  }
  return [...byPartition.values()].flatMap((partitionRows) => inBatches(partitionRows, size));
}

export default defineBenchmark({
  name: 'sync-throughput',
  description:
    'Events the sync worker projects and commits per second (Kafka to Postgres, positions included), against the same rows written by INSERT … unnest … ON CONFLICT and by binary COPY at the same batch size, for new keys and for 100% updates.',
  async run(context) {
    const { brokers, postgresUrl, options } = context;
    const log = (message: string) => context.log(message);
    const keys = options.number('keys', 100000);
    const concurrency = options.number('concurrency', 3);
    const bench = await SyncBench.create(brokers, postgresUrl);
    // The baselines write with the durability setting the worker uses (SYNC_SYNCHRONOUS_COMMIT defaults to false).
    const pool = new pg.Pool({ connectionString: bench.databaseUrl, max: concurrency + 1, options: '-c synchronous_commit=off' });
    try {
      const round0 = issueEvents(keys, 0);
      const round1 = issueEvents(keys, 1);

      log(`producing ${keys} new-key events`);
      await bench.produce(round0);
      let worker = await bench.startWorker({ SYNC_CONCURRENCY: String(concurrency) });
      log('sync worker: new keys');
      const fresh = await bench.measureCatchUp(0, keys);
      const batchesFresh = await workerMetric(worker, 'switchyard_sync_batch_duration_seconds_count');
      await worker.stop();
      const placementFresh = await placement(bench.pool);

      log(`producing ${keys} updates`);
      await bench.produce(round1);
      worker = await bench.startWorker({ SYNC_CONCURRENCY: String(concurrency) });
      log('sync worker: updates');
      const updates = await bench.measureCatchUp(keys, 2 * keys);
      const batchesUpdates = await workerMetric(worker, 'switchyard_sync_batch_duration_seconds_count');
      await worker.stop();
      const placementUpdates = await placement(bench.pool);

      // The worker's own batches decide the baselines' batch size.
      const batchSize = Math.max(1, Math.round((2 * keys) / Math.max(1, batchesFresh + batchesUpdates)));
      const topic = bench.names.name(topics.entities);
      // The same batches as the worker's: each one partition's rows in offset order, as Kafka handed them over.
      const rows0 = likeTheWorker(rowsOf(round0, topic), placementFresh);
      const rows1 = likeTheWorker(rowsOf(round1, topic), placementUpdates);
      const truncate = () => pool.query('TRUNCATE entities');
      const prefill = async () => {
        await truncate();
        await timedWrites(pool, inBatches(rows0, 5000), 1, writeWithCopy);
      };

      log(`baselines at ${batchSize} rows per transaction, ${concurrency} connections`);
      const batches0 = perPartitionBatches(rows0, batchSize);
      const batches1 = perPartitionBatches(rows1, batchSize);
      await truncate();
      const unnestFresh = await timedWrites(pool, batches0, concurrency, writeWithUnnest);
      await prefill();
      const unnestUpdates = await timedWrites(pool, batches1, concurrency, writeWithUnnest);
      await truncate();
      const copyFresh = await timedWrites(pool, batches0, concurrency, writeWithCopy);
      await prefill();
      const copyUpdates = await timedWrites(pool, batches1, concurrency, upsertWithCopy);

      const perSecond = (name: string, value: number): Metric => ({ name, value: Math.round(value), unit: 'events/s' });
      const compare = (measure: string, subject: number, baseline: string, value: number): Comparison => ({
        measure,
        subject: { name: 'sync-worker', value: Math.round(subject) },
        baseline: { name: baseline, value: Math.round(value) },
        unit: 'events/s',
        better: 'higher',
      });
      return {
        parameters: {
          keys,
          'batch transactions at once': concurrency,
          'rows per transaction (the worker’s average)': batchSize,
          'event size (bytes of JSON)': Buffer.byteLength(JSON.stringify(round0[0])),
        },
        metrics: [
          perSecond('sync-worker, new keys', fresh.perSecond),
          perSecond('sync-worker, 100% updates', updates.perSecond),
          perSecond('unnest upsert, new keys', unnestFresh.perSecond),
          perSecond('unnest upsert, 100% updates', unnestUpdates.perSecond),
          perSecond('binary COPY, new keys', copyFresh.perSecond),
          perSecond('binary COPY + staged upsert, 100% updates', copyUpdates.perSecond),
        ],
        comparisons: [
          compare('new keys', fresh.perSecond, 'INSERT … unnest … ON CONFLICT', unnestFresh.perSecond),
          compare('100% updates', updates.perSecond, 'INSERT … unnest … ON CONFLICT', unnestUpdates.perSecond),
          compare('new keys', fresh.perSecond, 'binary COPY', copyFresh.perSecond),
          compare('100% updates', updates.perSecond, 'binary COPY into staging + INSERT … ON CONFLICT', copyUpdates.perSecond),
        ],
        notes: [
          'The worker is the built service as users run it, reading a pre-filled topic of GitHub issue events (6 partitions); its rate is measured from its first committed position to the last, so start-up and the group join are not counted. Every worker transaction also locks and advances its partition position in sync_offsets.',
          'Baselines get the rows already built (no Kafka, no decoding, no validation) and write them into the same table with the same indexes and the same version guard, in the worker’s own batches — one partition’s rows in offset order, the worker’s average batch size, read back from the kafka_partition and kafka_offset the worker recorded — one transaction per batch, over as many connections as the worker opens transactions at once, with the same synchronous_commit setting.',
          'On 2 cores the worker shares the CPU with the broker and its own decoding, while the baselines have Postgres to themselves.',
        ],
      };
    } finally {
      await pool.end();
      await bench.close();
    }
  },
});
