import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Envelope } from '@switchyard/events';
import { EventConsumer, KafkaAdmin, type Kafka, type KafkaLogger, type PartitionBatch, type TopicNames } from '@switchyard/kafka';
import type pg from 'pg';
import { applyIsolated, applyPrepared, prepareBatch, type ApplyOutcome } from './apply.js';
import { isDataError } from './db.js';
import { SyncError } from './errors.js';
import { ensurePosition, readOffsets, savePosition } from './offsets.js';
import type { CommittedPosition, PositionPublisher } from './position-publisher.js';
import { quoteIdent, type Projection, type TableMap } from './projections/types.js';
import { retryTransient, type RetryPolicy } from './retry.js';

/**
 * Rebuilds a projection from offset 0 without downtime or side effects:
 *
 * 1. Shadow tables `<table>__rebuild` are created `LIKE` the live ones (indexes included). Append-only history
 *    tables are first seeded from the live table, because their topics' retention may no longer hold the events.
 * 2. A private consumer (its own group, nothing committed, nothing produced) folds the projection's topics from
 *    the earliest offset into the shadow tables with the same `apply` as the live worker.
 * 3. When the shadow has caught up, one transaction locks the live positions in `sync_offsets` (the live worker
 *    waits on its next batch), lets the shadow reach exactly those positions, advances the live positions to
 *    what the shadow applied, and swaps each shadow table in by renaming — views that read the live table are
 *    re-pointed and index names kept — then commits. Readers wait at most for that short transaction.
 * 4. The live positions after the swap are published on the projection-positions topic.
 *
 * The live table is untouched until the swap commits; a failed or interrupted rebuild leaves only a shadow table,
 * dropped by the next rebuild.
 */
export interface RebuildOptions {
  readonly pool: pg.Pool;
  readonly kafka: Kafka;
  readonly names: TopicNames;
  readonly logger: KafkaLogger;
  readonly projection: Projection;
  readonly retry: RetryPolicy;
  /** Set when a command asked for the rebuild; a command id is rebuilt at most once. */
  readonly commandId?: string;
  /** How long the swap may hold the live positions while the shadow closes the last gap. */
  readonly swapWaitMs?: number;
  readonly maxBytesPerPartition?: number;
  /** Gives up (SYNC_REBUILD_FAILED) when the rebuild has not swapped by then; default one hour. */
  readonly timeoutMs?: number;
  /** Told the live positions once the swap committed, to publish them. */
  readonly positions?: Pick<PositionPublisher, 'publish'>;
  /** Called every few seconds while the rebuild runs (a command handler heartbeats its batch here). */
  readonly onProgress?: (progress: { events: number }) => void;
}

export interface RebuildReport {
  readonly projection: string;
  readonly events: number;
  /** Records the live worker dead-lettered, skipped here. */
  readonly skipped: number;
  readonly durationMs: number;
  readonly swapLockMs: number;
  /** Set when this command was carried out before (a redelivery): its recorded outcome, which is not redone. */
  readonly previously?: { readonly status: 'succeeded' | 'failed'; readonly error: string | null };
}

/** Tables whose rows the topics may no longer be able to reproduce. */
const SEEDED_TABLES: ReadonlySet<string> = new Set(['command_log', 'command_timeline', 'api_health_history']);

const REBUILD_LOCK_SPACE = 7353;

function shadowName(table: string): string {
  return `${table}__rebuild`;
}

type Positions = Map<string, bigint>;
const positionKey = (topic: string, partition: number) => `${topic}/${partition}`;

function caughtUp(shadow: Positions, targets: Positions): boolean {
  for (const [key, target] of targets) if ((shadow.get(key) ?? 0n) < target) return false;
  return true;
}

export async function rebuildProjection(options: RebuildOptions): Promise<RebuildReport> {
  const { pool, projection } = options;
  const started = performance.now();
  const lockClient = await pool.connect();
  let rebuildId: string | undefined;
  try {
    const { rows } = await lockClient.query<{ locked: boolean }>(
      'SELECT pg_try_advisory_lock($1, hashtext($2)) AS locked',
      [REBUILD_LOCK_SPACE, projection.name],
    );
    if (!rows[0]?.locked) {
      throw new SyncError('SYNC_REBUILD_BUSY', `a rebuild of ${projection.name} is already running`);
    }
    // Holding the lock, any row still 'running' belongs to a rebuild that died before it finished.
    await lockClient.query(
      `UPDATE projection_rebuilds SET status = 'failed', finished_at = now(), error = 'interrupted before the swap'
        WHERE projection = $1 AND status = 'running' AND command_id IS DISTINCT FROM $2`,
      [projection.name, options.commandId ?? null],
    );
    // A command id rebuilds at most once; an interrupted run of the same command starts over.
    const inserted = await lockClient.query<{ id: string }>(
      `INSERT INTO projection_rebuilds (projection, command_id, status) VALUES ($1, $2, 'running')
       ON CONFLICT (command_id) DO UPDATE SET status = 'running', started_at = now(), finished_at = NULL, error = NULL
         WHERE projection_rebuilds.status = 'running'
       RETURNING id`,
      [projection.name, options.commandId ?? null],
    );
    rebuildId = inserted.rows[0]?.id;
    if (rebuildId === undefined) {
      const recorded = await lockClient.query<{ status: 'succeeded' | 'failed'; error: string | null }>(
        'SELECT status, error FROM projection_rebuilds WHERE command_id = $1',
        [options.commandId],
      );
      const previously = recorded.rows[0] ?? { status: 'failed' as const, error: 'no record of the earlier run' };
      return { projection: projection.name, events: 0, skipped: 0, durationMs: 0, swapLockMs: 0, previously };
    }
    const report = await runRebuild(options, started);
    await lockClient.query(
      "UPDATE projection_rebuilds SET status = 'succeeded', finished_at = now(), events = $2 WHERE id = $1",
      [rebuildId, report.events],
    );
    return report;
  } catch (error) {
    if (rebuildId !== undefined) {
      await lockClient
        .query("UPDATE projection_rebuilds SET status = 'failed', finished_at = now(), error = $2 WHERE id = $1", [
          rebuildId,
          (error as Error).message,
        ])
        .catch(() => undefined);
    }
    if (error instanceof SyncError) throw error;
    throw new SyncError('SYNC_REBUILD_FAILED', `rebuild of ${projection.name} failed: ${(error as Error).message}`, {
      cause: error,
    });
  } finally {
    await lockClient.query('SELECT pg_advisory_unlock($1, hashtext($2))', [REBUILD_LOCK_SPACE, projection.name]).catch(() => undefined);
    lockClient.release();
  }
}

async function runRebuild(options: RebuildOptions, started: number): Promise<RebuildReport> {
  const { pool, projection, names } = options;
  const liveTables = projection.tables;
  const shadowTables: TableMap<string> = Object.fromEntries(
    Object.entries(liveTables).map(([logical, table]) => [logical, shadowName(table)]),
  );

  for (const table of Object.values(liveTables)) {
    await pool.query(`DROP TABLE IF EXISTS ${quoteIdent(shadowName(table))}`);
    await pool.query(`CREATE TABLE ${quoteIdent(shadowName(table))} (LIKE ${quoteIdent(table)} INCLUDING ALL)`);
    if (SEEDED_TABLES.has(table)) {
      await pool.query(`INSERT INTO ${quoteIdent(shadowName(table))} SELECT * FROM ${quoteIdent(table)}`);
    }
  }

  // Every partition gets a position row now, so the swap's lock covers partitions the live worker has not seen.
  const admin = new KafkaAdmin(options.kafka, names, options.logger);
  await admin.connect();
  const cluster = await admin.clusterId();
  const targets: Positions = new Map();
  // Where each partition's log starts: a partition whose retention has emptied it is caught up from the outset.
  const shadow: Positions = new Map();
  try {
    for (const spec of projection.topics) {
      const topic = names.name(spec);
      for (const { partition, high, low } of await admin.partitionOffsets(topic)) {
        targets.set(positionKey(topic, partition), BigInt(high));
        shadow.set(positionKey(topic, partition), BigInt(low));
        await ensurePosition(pool, projection.name, topic, partition);
      }
    }
  } finally {
    await admin.disconnect();
  }

  let events = 0;
  let skipped = 0;
  let stopped = false;
  const groupId = `${names.prefix}sync-rebuild.${projection.name}.${randomBytes(4).toString('hex')}`;
  let consumerError: Error | undefined;
  const consumer = new EventConsumer(options.kafka, names, {
    groupId,
    topics: projection.topics,
    fromBeginning: true,
    commitToKafka: false,
    maxBytesPerPartition: options.maxBytesPerPartition ?? 1048576,
    logger: options.logger,
    onFatal: (error) => {
      consumerError = error;
    },
  });

  const applyShadowBatch = async (batch: PartitionBatch<Envelope>) => {
    if (stopped) return;
    await retryTransient(
      batch,
      options.retry,
      async () => {
        const client = await pool.connect();
        try {
          const prepared = prepareBatch(projection, batch.records, shadowTables);
          const outcome = await applyInTransaction(client, (isolate) =>
            isolate ? applyIsolated(client, projection, prepared, shadowTables) : applyPrepared(client, prepared),
          );
          events += outcome.applied;
          skipped += outcome.rejected.length;
        } finally {
          client.release();
        }
      },
      {
        onFailure: (error, attempt) => options.logger.warn({ err: error, attempt }, 'rebuild batch failed transiently; retrying'),
        onSuccess: () => undefined,
      },
    );
    shadow.set(positionKey(batch.topic, batch.partition), BigInt(batch.nextOffset));
    batch.markDone();
  };

  const progress = setInterval(() => options.onProgress?.({ events }), 2000);
  let swapLockMs: number;
  try {
    await consumer.start((batch) => applyShadowBatch(batch as PartitionBatch<Envelope>));
    const giveUpAt = Date.now() + (options.timeoutMs ?? 3600000);
    const waitFor = async (condition: () => boolean, timeoutMs: number) => {
      const deadline = Date.now() + timeoutMs;
      while (!condition()) {
        if (consumerError !== undefined) throw consumerError;
        if (Date.now() > giveUpAt) throw new Error(`no swap within ${options.timeoutMs ?? 3600000} ms`);
        if (Date.now() > deadline) return false;
        await sleep(50);
      }
      return true;
    };

    // 1. Fold everything that existed when the rebuild began.
    await waitFor(() => caughtUp(shadow, targets), Number.MAX_SAFE_INTEGER);
    options.logger.info({ projection: projection.name, events }, 'rebuild caught up with the log; swapping');

    // 2. Swap, retrying when the live worker moves ahead faster than the shadow closes the gap under lock.
    for (;;) {
      const live = new Map((await readOffsets(pool, projection.name)).map((row) => [positionKey(row.topic, row.partition), row.nextOffset]));
      await waitFor(() => caughtUp(shadow, live), 30000);
      const client = await pool.connect();
      try {
        await client.query('BEGIN');
        await client.query("SET LOCAL lock_timeout = '5s'");
        const lockStarted = performance.now();
        const { rows } = await client.query<{ topic: string; partition: number; next_offset: string; kafka_cluster: string | null }>(
          'SELECT topic, partition, next_offset, kafka_cluster FROM sync_offsets WHERE projection = $1 FOR UPDATE',
          [projection.name],
        );
        const locked: Positions = new Map(rows.map((row) => [positionKey(row.topic, row.partition), BigInt(row.next_offset)]));
        if (!(await waitFor(() => caughtUp(shadow, locked), options.swapWaitMs ?? 5000))) {
          await client.query('ROLLBACK');
          continue;
        }
        stopped = true;
        await consumer.stop();
        const swapped: CommittedPosition[] = [];
        for (const row of rows) {
          const reached = shadow.get(positionKey(row.topic, row.partition)) ?? 0n;
          const partitionOf = { projection: projection.name, topic: row.topic, partition: row.partition, cluster };
          if (reached > BigInt(row.next_offset)) {
            await savePosition(client, partitionOf, reached.toString());
            swapped.push({ ...partitionOf, nextOffset: reached.toString() });
          } else if (row.kafka_cluster === cluster && BigInt(row.next_offset) > 0n) {
            // Left as it was; a position of another cluster's log says nothing about this one and is not published.
            swapped.push({ ...partitionOf, nextOffset: row.next_offset });
          }
        }
        for (const table of Object.values(liveTables)) await swapTable(client, table, shadowName(table));
        await client.query('COMMIT');
        // Before anything else, so the live worker's next commits (it was waiting on these rows) are published after.
        for (const position of swapped) options.positions?.publish(position);
        swapLockMs = performance.now() - lockStarted;
        break;
      } catch (error) {
        await client.query('ROLLBACK').catch(() => undefined);
        throw error;
      } finally {
        client.release();
      }
    }
  } finally {
    clearInterval(progress);
    stopped = true;
    await consumer.stop().catch(() => undefined);
    const cleanup = new KafkaAdmin(options.kafka, names, options.logger);
    await cleanup.connect().catch(() => undefined);
    await cleanup.deleteGroups([groupId]);
    await cleanup.disconnect().catch(() => undefined);
  }
  return { projection: projection.name, events, skipped, durationMs: performance.now() - started, swapLockMs };
}

/** One transaction; when Postgres refuses some record's data, once more in isolate mode. */
async function applyInTransaction(
  client: pg.ClientBase,
  apply: (isolate: boolean) => Promise<ApplyOutcome>,
): Promise<ApplyOutcome> {
  for (const isolate of [false, true]) {
    try {
      await client.query('BEGIN');
      const outcome = await apply(isolate);
      await client.query('COMMIT');
      return outcome;
    } catch (error) {
      await client.query('ROLLBACK').catch(() => undefined);
      if (isolate || !isDataError(error)) throw error;
    }
  }
  throw new Error('unreachable');
}

const INDEX_BODY = /^CREATE (UNIQUE )?INDEX \S+ ON (ONLY )?\S+ /;

/**
 * Inside the caller's transaction: the shadow takes the live table's name, its indexes take the live indexes'
 * names (matched by definition), views reading the live table are re-created to read the new one, and the old
 * table is dropped.
 */
async function swapTable(client: pg.ClientBase, live: string, shadow: string): Promise<void> {
  const views = await client.query<{ name: string; kind: string; definition: string }>(
    `SELECT DISTINCT v.oid::regclass::text AS name, v.relkind AS kind, pg_get_viewdef(v.oid) AS definition
       FROM pg_depend d
       JOIN pg_rewrite r ON r.oid = d.objid
       JOIN pg_class v ON v.oid = r.ev_class
      WHERE d.classid = 'pg_rewrite'::regclass AND d.refobjid = $1::regclass AND v.oid <> $1::regclass`,
    [live],
  );
  const materialized = views.rows.filter((view) => view.kind !== 'v');
  if (materialized.length > 0) {
    throw new SyncError('SYNC_REBUILD_UNSUPPORTED', `materialized views depend on ${live}: ${materialized.map((v) => v.name).join(', ')}`);
  }
  const indexes = async (table: string) =>
    (
      await client.query<{ name: string; definition: string }>(
        `SELECT i.relname AS name, pg_get_indexdef(i.oid) AS definition
           FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid WHERE x.indrelid = $1::regclass`,
        [table],
      )
    ).rows.map((row) => ({ name: row.name, body: `${row.definition.startsWith('CREATE UNIQUE') ? 'U ' : ''}${row.definition.replace(INDEX_BODY, '')}` }));
  // Readers of a view lock the view, then the table; take the locks in that order or a reader deadlocks with us.
  const lockOrder = [...views.rows.map((view) => view.name), quoteIdent(live), quoteIdent(shadow)];
  await client.query(`LOCK TABLE ${lockOrder.join(', ')} IN ACCESS EXCLUSIVE MODE`);
  const liveIndexes = await indexes(live);
  const shadowIndexes = await indexes(shadow);
  const retired = `${live}__old`;

  await client.query(`ALTER TABLE ${quoteIdent(live)} RENAME TO ${quoteIdent(retired)}`);
  for (const index of liveIndexes) {
    await client.query(`ALTER INDEX ${quoteIdent(index.name)} RENAME TO ${quoteIdent(`${index.name.slice(0, 50)}__old`)}`);
  }
  await client.query(`ALTER TABLE ${quoteIdent(shadow)} RENAME TO ${quoteIdent(live)}`);
  for (const index of liveIndexes) {
    const twin = shadowIndexes.find((candidate) => candidate.body === index.body);
    if (twin) await client.query(`ALTER INDEX ${quoteIdent(twin.name)} RENAME TO ${quoteIdent(index.name)}`);
  }
  for (const view of views.rows) {
    await client.query(`CREATE OR REPLACE VIEW ${view.name} AS ${view.definition}`);
  }
  await client.query(`DROP TABLE ${quoteIdent(retired)}`);
}
