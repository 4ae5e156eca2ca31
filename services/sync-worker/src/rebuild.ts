import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Envelope, TopicSpec } from '@switchyard/events';
import { EventConsumer, KafkaAdmin, type Kafka, type KafkaLogger, type PartitionBatch, type TopicNames } from '@switchyard/kafka';
import type pg from 'pg';
import { applyIsolated, applyPrepared, prepareBatch, type ApplyOutcome } from './apply.js';
import { isDataError } from './db.js';
import { SyncError } from './errors.js';
import { ensurePosition, savePosition } from './offsets.js';
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
 * Only the live positions of this log are waited for. One read from another Kafka cluster means another deployment
 * writes into this database (positions it left behind are adopted at start, see instances.ts): the rebuild fails
 * at once with SYNC_DATABASE_IN_USE. One beyond its partition's end (a recreated or truncated topic), or stored
 * before clusters were recorded, is one the live worker would reset itself: the swap replaces it with the shadow's.
 * From "caught up" to the swap's commit may take `swapTimeoutMs`; then it fails naming the partitions behind.
 *
 * `signal` stops the rebuild before the swap (SYNC_REBUILD_INTERRUPTED). However it ends short of the swap, its
 * consumer stops, its statements still running are cancelled and its shadow tables are dropped; the live tables are
 * untouched. Only a crash leaves shadow tables behind, and the next rebuild drops them first.
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
  /** How long one attempt of the swap may hold the live positions while the shadow closes the last gap. */
  readonly swapWaitMs?: number;
  /** From "caught up with the log" to the swap's commit, over all attempts (SYNC_REBUILD_SWAP_TIMEOUT_MS). */
  readonly swapTimeoutMs?: number;
  readonly maxBytesPerPartition?: number;
  /** Gives up (SYNC_REBUILD_FAILED) when the rebuild has not swapped by then; default one hour. */
  readonly timeoutMs?: number;
  /**
   * Aborted when the process stops: the rebuild ends before the swap with SYNC_REBUILD_INTERRUPTED, its message
   * saying the abort's reason (a string or an Error; a SyncError reason is thrown as it is).
   */
  readonly signal?: AbortSignal;
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
  readonly previously?: { readonly status: 'succeeded' | 'failed'; readonly error: string | null; readonly errorCode: string | null };
}

export const DEFAULT_SWAP_TIMEOUT_MS = 120000;

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
    // Holding the lock, any row still 'running' belongs to a rebuild whose process died before it finished.
    await lockClient.query(
      `UPDATE projection_rebuilds SET status = 'failed', finished_at = now(), error = 'interrupted before the swap: its process died',
              error_code = 'SYNC_REBUILD_INTERRUPTED'
        WHERE projection = $1 AND status = 'running' AND command_id IS DISTINCT FROM $2`,
      [projection.name, options.commandId ?? null],
    );
    // A command id rebuilds at most once; a run of the same command whose process died starts over.
    const inserted = await lockClient.query<{ id: string }>(
      `INSERT INTO projection_rebuilds (projection, command_id, status) VALUES ($1, $2, 'running')
       ON CONFLICT (command_id) DO UPDATE SET status = 'running', started_at = now(), finished_at = NULL, error = NULL, error_code = NULL
         WHERE projection_rebuilds.status = 'running'
       RETURNING id`,
      [projection.name, options.commandId ?? null],
    );
    rebuildId = inserted.rows[0]?.id;
    if (rebuildId === undefined) {
      const recorded = await lockClient.query<{ status: 'succeeded' | 'failed'; error: string | null; error_code: string | null }>(
        'SELECT status, error, error_code FROM projection_rebuilds WHERE command_id = $1',
        [options.commandId],
      );
      const row = recorded.rows[0];
      const previously = row
        ? { status: row.status, error: row.error, errorCode: row.error_code }
        : { status: 'failed' as const, error: 'no record of the earlier run', errorCode: null };
      return { projection: projection.name, events: 0, skipped: 0, durationMs: 0, swapLockMs: 0, previously };
    }
    const report = await runRebuild(options, lockClient, started);
    await lockClient.query(
      "UPDATE projection_rebuilds SET status = 'succeeded', finished_at = now(), events = $2 WHERE id = $1",
      [rebuildId, report.events],
    );
    return report;
  } catch (error) {
    const failure =
      error instanceof SyncError
        ? error
        : new SyncError('SYNC_REBUILD_FAILED', `rebuild of ${projection.name} failed: ${(error as Error).message}`, { cause: error });
    if (rebuildId !== undefined) {
      await lockClient
        .query("UPDATE projection_rebuilds SET status = 'failed', finished_at = now(), error = $2, error_code = $3 WHERE id = $1", [
          rebuildId,
          failure.message,
          failure.code,
        ])
        .catch(() => undefined);
    }
    throw failure;
  } finally {
    await lockClient.query('SELECT pg_advisory_unlock($1, hashtext($2))', [REBUILD_LOCK_SPACE, projection.name]).catch(() => undefined);
    lockClient.release();
  }
}

function interruption(projection: string, reason: unknown): SyncError {
  if (reason instanceof SyncError) return reason;
  const why = reason instanceof Error ? reason.message : typeof reason === 'string' ? reason : 'the process is stopping';
  return new SyncError('SYNC_REBUILD_INTERRUPTED', `rebuild of ${projection} interrupted before the swap: ${why}; the live tables were not touched`);
}

function swapTimedOut(projection: string, timeoutMs: number, shadow: Positions, targets: Positions): SyncError {
  const behind = [...targets]
    .filter(([key, target]) => (shadow.get(key) ?? 0n) < target)
    .map(([key, target]) => `${key} (live ${target}, shadow ${shadow.get(key) ?? 0n})`);
  const what =
    behind.length > 0
      ? `the shadow stayed behind the live position of ${behind.join(', ')}`
      : 'the shadow reached the live positions, but the swap could not commit in time';
  return new SyncError(
    'SYNC_REBUILD_FAILED',
    `rebuild of ${projection} gave up: the swap did not complete within ${timeoutMs} ms (SYNC_REBUILD_SWAP_TIMEOUT_MS): ${what}; the live tables were not touched`,
    { details: { behind } },
  );
}

interface LiveRow {
  readonly topic: string;
  readonly partition: number;
  readonly next: bigint;
  readonly cluster: string | null;
}

/** The live positions of a rebuild's partitions, sorted by what the swap does with them. */
interface SortedPositions {
  readonly rows: readonly LiveRow[];
  /** Positions in this log: the shadow reaches them before the swap. */
  readonly targets: Positions;
  /** Not positions in this log (beyond the partition's end, or stored before clusters were recorded): replaced. */
  readonly notThisLog: ReadonlySet<string>;
}

/** The live positions of the rebuild's topics in `sync_offsets`, read against this cluster's logs. */
class LivePositions {
  private readonly admin: KafkaAdmin;
  private readonly projection: string;
  private readonly topics: readonly string[];
  readonly cluster: string;
  /** The highest log end seen per partition (from the admin and the shadow's batches). */
  private readonly ends: Positions = new Map();

  constructor(admin: KafkaAdmin, projection: string, topics: readonly string[], cluster: string) {
    this.admin = admin;
    this.projection = projection;
    this.topics = topics;
    this.cluster = cluster;
  }

  sawEnd(key: string, end: bigint): void {
    if ((this.ends.get(key) ?? -1n) < end) this.ends.set(key, end);
  }

  /** Each partition's log start and end, now; remembered as seen. */
  async readLogs(topics: readonly string[] = this.topics): Promise<{ key: string; partition: number; topic: string; low: bigint; high: bigint }[]> {
    const logs = [];
    for (const topic of topics) {
      for (const { partition, low, high } of await this.admin.partitionOffsets(topic)) {
        const key = positionKey(topic, partition);
        this.sawEnd(key, BigInt(high));
        logs.push({ key, topic, partition, low: BigInt(low), high: BigInt(high) });
      }
    }
    return logs;
  }

  /** Reads the positions (locking them, in the caller's transaction, with `forUpdate`); throws on one of another cluster. */
  async read(db: pg.Pool | pg.ClientBase, forUpdate = false): Promise<LiveRow[]> {
    const { rows } = await db.query<{ topic: string; partition: number; next_offset: string; kafka_cluster: string | null }>(
      `SELECT topic, partition, next_offset, kafka_cluster FROM sync_offsets
        WHERE projection = $1 AND topic = ANY($2::text[]) ORDER BY topic, partition${forUpdate ? ' FOR UPDATE' : ''}`,
      [this.projection, this.topics],
    );
    const live = rows.map((row) => ({ topic: row.topic, partition: row.partition, next: BigInt(row.next_offset), cluster: row.kafka_cluster }));
    const foreign = live.find((row) => row.cluster !== null && row.cluster !== this.cluster);
    if (foreign !== undefined) {
      throw new SyncError(
        'SYNC_DATABASE_IN_USE',
        `rebuild of ${this.projection} stopped: the live position of ${positionKey(foreign.topic, foreign.partition)} (next offset ` +
          `${foreign.next}) was read from Kafka cluster ${foreign.cluster}, while this worker reads Kafka cluster ${this.cluster}: ` +
          'another deployment is writing to this database. Give each deployment its own database with DATABASE_URL (or stop the ' +
          'other), then rebuild again; the live tables were not touched.',
        { details: { topic: foreign.topic, partition: foreign.partition, otherCluster: foreign.cluster, cluster: this.cluster } },
      );
    }
    return live;
  }

  /** Reads and sorts the positions (see `read`). */
  async sorted(db: pg.Pool | pg.ClientBase, forUpdate = false): Promise<SortedPositions> {
    const rows = await this.read(db, forUpdate);
    // A position past the highest end seen may be past the log's end, or the log grew since: ask before deciding.
    const unsure = new Set(rows.filter((row) => row.cluster !== null && row.next > (this.ends.get(positionKey(row.topic, row.partition)) ?? 0n)).map((row) => row.topic));
    if (unsure.size > 0) await this.readLogs([...unsure]);
    const targets: Positions = new Map();
    const notThisLog = new Set<string>();
    for (const row of rows) {
      const key = positionKey(row.topic, row.partition);
      const end = this.ends.get(key);
      // A partition this cluster does not have (any more): nothing to wait for, nothing to replace.
      if (end === undefined) continue;
      if ((row.cluster === null && row.next > 0n) || row.next > end) notThisLog.add(key);
      else targets.set(key, row.next);
    }
    return { rows, targets, notThisLog };
  }
}

/** Where a pg client's backend process is: pg keeps the pid from the startup handshake, not in its types. */
function backendPid(client: pg.PoolClient): number {
  return (client as unknown as { processID: number }).processID;
}

/**
 * The rebuild's statements that can run long — a shadow batch waiting on a lock someone holds, the copy that seeds a
 * history table — so that a rebuild ending early cancels them instead of waiting. Cancels go over `session` (the
 * connection holding the rebuild's lock). A client a cancel named is closed, not returned to the pool: a cancel
 * that arrives as one statement ends may hit its next one (a ROLLBACK), and the live worker must never be handed a
 * connection left inside a transaction.
 */
class RunningStatements {
  private readonly pool: pg.Pool;
  private readonly session: pg.ClientBase;
  private readonly busy = new Set<pg.PoolClient>();
  private readonly cancelled = new WeakSet<pg.PoolClient>();
  private cancelling: Promise<unknown> = Promise.resolve();

  constructor(pool: pg.Pool, session: pg.ClientBase) {
    this.pool = pool;
    this.session = session;
  }

  async run<T>(work: (client: pg.PoolClient) => Promise<T>): Promise<T> {
    const client = await this.pool.connect();
    this.busy.add(client);
    try {
      return await work(client);
    } finally {
      this.busy.delete(client);
      await this.cancelling;
      client.release(this.cancelled.has(client));
    }
  }

  cancelAll(): Promise<unknown> {
    const clients = [...this.busy];
    for (const client of clients) this.cancelled.add(client);
    const pids = clients.map(backendPid);
    if (pids.length > 0) {
      this.cancelling = this.session.query('SELECT pg_cancel_backend(pid) FROM unnest($1::int[]) AS pid', [pids]).catch(() => undefined);
    }
    return this.cancelling;
  }
}

/** Drops a rebuild's shadow tables; a session holding one makes the drop give up after 2 s, leaving it for the next rebuild. */
async function dropShadows(session: pg.ClientBase, tables: readonly string[], logger: KafkaLogger): Promise<void> {
  for (const table of tables) {
    try {
      await session.query(`BEGIN; SET LOCAL lock_timeout = '2s'; DROP TABLE IF EXISTS ${quoteIdent(table)}; COMMIT`);
    } catch (error) {
      await session.query('ROLLBACK').catch(() => undefined);
      logger.warn({ err: error, table }, 'could not drop the shadow table (a session holds it); the next rebuild drops it');
    }
  }
}

async function runRebuild(options: RebuildOptions, session: pg.ClientBase, started: number): Promise<RebuildReport> {
  const { pool, projection, names, logger, signal } = options;
  const liveTables = projection.tables;
  const shadowTables: TableMap<string> = Object.fromEntries(
    Object.entries(liveTables).map(([logical, table]) => [logical, shadowName(table)]),
  );
  const topicNames = projection.topics.map((spec) => names.name(spec));
  const timeoutMs = options.timeoutMs ?? 3600000;
  const swapTimeoutMs = options.swapTimeoutMs ?? DEFAULT_SWAP_TIMEOUT_MS;
  const giveUpAt = Date.now() + timeoutMs;
  const checkpoint = () => {
    if (signal?.aborted) throw interruption(projection.name, signal.reason);
  };
  const statements = new RunningStatements(pool, session);
  const cancelOnAbort = () => void statements.cancelAll();
  signal?.addEventListener('abort', cancelOnAbort);
  // Ends the shadow's retries once the rebuild is done with it, however it ends.
  const halt = new AbortController();
  const shadowSignal = signal === undefined ? halt.signal : AbortSignal.any([signal, halt.signal]);

  let events = 0;
  let skipped = 0;
  let stopped = false;
  let swapped = false;
  const ending = () => stopped || shadowSignal.aborted;
  const groupId = `${names.prefix}sync-rebuild.${projection.name}.${randomBytes(4).toString('hex')}`;
  let consumer: EventConsumer<TopicSpec> | undefined;
  let consumerError: Error | undefined;
  let progress: NodeJS.Timeout | undefined;
  let swapLockMs: number | undefined;
  const admin = new KafkaAdmin(options.kafka, names, logger);
  try {
    await admin.connect();
    const live = new LivePositions(admin, projection.name, topicNames, await admin.clusterId());
    // The fold's first goal is the logs as they are now; a partition whose retention emptied it is caught up already.
    const targets: Positions = new Map();
    const shadow: Positions = new Map();
    for (const log of await live.readLogs()) {
      targets.set(log.key, log.high);
      shadow.set(log.key, log.low);
      // Every partition gets a position row now, so the swap's lock covers partitions the live worker has not seen.
      await ensurePosition(pool, projection.name, log.topic, log.partition);
    }
    // Another deployment writing here would make the swap wait for what this cluster's logs never reach: stop now.
    await live.read(pool);
    checkpoint();

    for (const table of Object.values(liveTables)) {
      await statements.run(async (client) => {
        await client.query(`DROP TABLE IF EXISTS ${quoteIdent(shadowName(table))}`);
        await client.query(`CREATE TABLE ${quoteIdent(shadowName(table))} (LIKE ${quoteIdent(table)} INCLUDING ALL)`);
        if (SEEDED_TABLES.has(table)) {
          await client.query(`INSERT INTO ${quoteIdent(shadowName(table))} SELECT * FROM ${quoteIdent(table)}`);
        }
      });
      checkpoint();
    }

    const applyShadowBatch = async (batch: PartitionBatch<Envelope>) => {
      if (ending()) return;
      const key = positionKey(batch.topic, batch.partition);
      live.sawEnd(key, BigInt(batch.highWatermark));
      const done = { applied: false };
      await retryTransient(
        { isStale: () => ending() || batch.isStale(), heartbeat: () => batch.heartbeat() },
        options.retry,
        () =>
          statements.run(async (client) => {
            const prepared = prepareBatch(projection, batch.records, shadowTables);
            const outcome = await applyInTransaction(client, (isolate) =>
              isolate ? applyIsolated(client, projection, prepared, shadowTables) : applyPrepared(client, prepared),
            );
            events += outcome.applied;
            skipped += outcome.rejected.length;
            done.applied = true;
          }),
        {
          onFailure: (error, attempt) => {
            if (!ending()) logger.warn({ err: error, attempt }, 'rebuild batch failed transiently; retrying');
          },
          onSuccess: () => undefined,
        },
        shadowSignal,
      );
      // A batch given up (the rebuild is ending, or the partition moved) is not marked: it was not applied.
      if (!done.applied) return;
      shadow.set(key, BigInt(batch.nextOffset));
      batch.markDone();
    };

    progress = setInterval(() => options.onProgress?.({ events }), 2000);
    consumer = new EventConsumer(options.kafka, names, {
      groupId,
      topics: projection.topics,
      fromBeginning: true,
      commitToKafka: false,
      maxBytesPerPartition: options.maxBytesPerPartition ?? 1048576,
      logger,
      onFatal: (error) => {
        consumerError = error;
      },
    });
    await consumer.start((batch) => applyShadowBatch(batch as PartitionBatch<Envelope>));

    /**
     * Polls `condition` until it holds (true) or `deadline` passes (false). Throws when interrupted, when the private
     * consumer failed, past the overall timeout, and — checked every second — on a live position of another cluster.
     */
    const until = async (condition: () => boolean, deadline: number): Promise<boolean> => {
      let nextCheck = Date.now() + 1000;
      for (;;) {
        checkpoint();
        if (consumerError !== undefined) throw consumerError;
        if (condition()) return true;
        const now = Date.now();
        if (now > giveUpAt) throw new Error(`no swap within ${timeoutMs} ms`);
        if (now > deadline) return false;
        if (now >= nextCheck) {
          await live.read(pool);
          nextCheck = Date.now() + 1000;
        }
        await sleep(50, undefined, signal === undefined ? undefined : { signal }).catch(() => undefined);
      }
    };

    // 1. Fold everything that existed when the rebuild began.
    await until(() => caughtUp(shadow, targets), Number.POSITIVE_INFINITY);
    const swapDeadline = Date.now() + swapTimeoutMs;
    logger.info({ projection: projection.name, events, swapTimeoutMs }, 'rebuild caught up with the log; swapping');

    // 2. Swap, retrying when the live worker moves ahead faster than the shadow closes the gap under lock, until
    //    the swap deadline.
    let waitingFor = targets;
    for (;;) {
      checkpoint();
      if (Date.now() > swapDeadline) throw swapTimedOut(projection.name, swapTimeoutMs, shadow, waitingFor);
      waitingFor = (await live.sorted(pool)).targets;
      await until(() => caughtUp(shadow, waitingFor), Math.min(swapDeadline, Date.now() + 30000));
      const client = await pool.connect();
      try {
        await client.query('BEGIN');
        await client.query("SET LOCAL lock_timeout = '5s'");
        const lockStarted = performance.now();
        const locked = await live.sorted(client, true);
        waitingFor = locked.targets;
        if (!(await until(() => caughtUp(shadow, locked.targets), Math.min(swapDeadline, Date.now() + (options.swapWaitMs ?? 5000))))) {
          await client.query('ROLLBACK');
          continue;
        }
        checkpoint();
        stopped = true;
        // A shadow batch still running is past the locked positions: cancelled, it is not applied (nor counted),
        // and the live worker applies those records after the swap. The swap never waits on someone else's lock.
        halt.abort();
        await statements.cancelAll();
        await consumer.stop();
        const moved: CommittedPosition[] = [];
        const replaced: string[] = [];
        for (const row of locked.rows) {
          const key = positionKey(row.topic, row.partition);
          const reached = shadow.get(key);
          if (reached === undefined) continue;
          const partitionOf = { projection: projection.name, topic: row.topic, partition: row.partition, cluster: live.cluster };
          const replace = locked.notThisLog.has(key);
          if (replace) replaced.push(`${key} (stored ${row.next}, cluster ${row.cluster ?? 'unrecorded'}; now ${reached})`);
          if (replace || reached > row.next) {
            await savePosition(client, partitionOf, reached.toString());
            if (reached > 0n) moved.push({ ...partitionOf, nextOffset: reached.toString() });
          } else if (row.cluster === live.cluster && row.next > 0n) {
            // Left as it was; a position stored before clusters were recorded is not published.
            moved.push({ ...partitionOf, nextOffset: row.next.toString() });
          }
        }
        for (const table of Object.values(liveTables)) await swapTable(client, table, shadowName(table));
        await client.query('COMMIT');
        swapped = true;
        // Before anything else, so the live worker's next commits (it was waiting on these rows) are published after.
        for (const position of moved) options.positions?.publish(position);
        swapLockMs = performance.now() - lockStarted;
        if (replaced.length > 0) {
          logger.warn(
            { projection: projection.name, replaced },
            "live positions that were not this log's (beyond the partition's end, or stored before clusters were recorded) were replaced by the shadow's",
          );
        }
        break;
      } catch (error) {
        await client.query('ROLLBACK').catch(() => undefined);
        throw error;
      } finally {
        client.release();
      }
    }
  } catch (error) {
    // A statement cancelled because the rebuild was asked to stop fails with Postgres's words: say what happened.
    if (signal?.aborted && !(error instanceof SyncError)) throw interruption(projection.name, signal.reason);
    throw error;
  } finally {
    clearInterval(progress);
    signal?.removeEventListener('abort', cancelOnAbort);
    stopped = true;
    halt.abort();
    if (!swapped) await statements.cancelAll();
    if (consumer !== undefined) {
      await consumer.stop().catch(() => undefined);
      await admin.deleteGroups([groupId]);
    }
    if (!swapped) await dropShadows(session, Object.values(shadowTables), logger);
    await admin.disconnect().catch(() => undefined);
  }
  return { projection: projection.name, events, skipped, durationMs: performance.now() - started, swapLockMs: swapLockMs ?? 0 };
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
