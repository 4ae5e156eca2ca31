import type pg from 'pg';

/**
 * Consumer positions, one row per (projection, topic, partition): the next offset to apply. Read with FOR UPDATE
 * at the start of every batch transaction, so two members that briefly both hold a partition during a rebalance
 * serialise on the row, and the second sees what the first committed.
 *
 * Opening and closing a batch transaction are one round trip each (two statements in one simple-protocol query):
 * the Node thread that answers them is busy decoding other batches, and every round trip inside a transaction is
 * time Postgres holds it open doing nothing.
 */
function partitionRow(client: pg.ClientBase, projection: string, topic: string, partition: number): string {
  return `projection = ${client.escapeLiteral(projection)} AND topic = ${client.escapeLiteral(topic)} AND partition = ${Math.trunc(partition)}`;
}

export interface LockedPosition {
  readonly next: bigint;
  /** The Kafka cluster the position was read from; null for positions stored before it was recorded. */
  readonly cluster: string | null;
}

/** BEGIN, then lock and read the partition's position (creating the row at 0 the first time). */
export async function beginAndLock(client: pg.ClientBase, projection: string, topic: string, partition: number): Promise<LockedPosition> {
  const where = partitionRow(client, projection, topic, partition);
  const select = `SELECT next_offset, kafka_cluster FROM sync_offsets WHERE ${where} FOR UPDATE`;
  type Row = { next_offset: string; kafka_cluster: string | null };
  const results = (await client.query(`BEGIN; ${select}`)) as unknown as pg.QueryResult<Row>[];
  let row = results[1]?.rows[0];
  if (row === undefined) {
    await ensurePosition(client, projection, topic, partition);
    row = (await client.query<Row>(select)).rows[0];
  }
  return { next: BigInt(row?.next_offset ?? '0'), cluster: row?.kafka_cluster ?? null };
}

/** Creates the partition's position row, at 0, when it has none. */
export async function ensurePosition(db: pg.Pool | pg.ClientBase, projection: string, topic: string, partition: number): Promise<void> {
  await db.query(
    'INSERT INTO sync_offsets (projection, topic, partition, next_offset) VALUES ($1, $2, $3, 0) ON CONFLICT DO NOTHING',
    [projection, topic, partition],
  );
}

export interface PositionOf {
  readonly projection: string;
  readonly topic: string;
  readonly partition: number;
  /** The Kafka cluster the offset counts in. */
  readonly cluster: string;
}

function savePositionSql(client: pg.ClientBase, position: PositionOf, nextOffset: string): string {
  const where = partitionRow(client, position.projection, position.topic, position.partition);
  return `UPDATE sync_offsets SET next_offset = ${BigInt(nextOffset)}, kafka_cluster = ${client.escapeLiteral(position.cluster)}, updated_at = now() WHERE ${where}`;
}

/** Stores the partition's new position inside the caller's transaction. */
export async function savePosition(client: pg.ClientBase, position: PositionOf, nextOffset: string): Promise<void> {
  await client.query(savePositionSql(client, position, nextOffset));
}

/** Stores the partition's new position, then COMMIT. */
export async function saveAndCommit(client: pg.ClientBase, position: PositionOf, nextOffset: string): Promise<void> {
  await client.query(`${savePositionSql(client, position, nextOffset)}; COMMIT`);
}

export interface StoredOffset {
  projection: string;
  topic: string;
  partition: number;
  nextOffset: bigint;
}

export async function readOffsets(db: pg.Pool | pg.ClientBase, projection?: string): Promise<StoredOffset[]> {
  const { rows } = await db.query<{ projection: string; topic: string; partition: number; next_offset: string }>(
    projection === undefined
      ? 'SELECT projection, topic, partition, next_offset FROM sync_offsets ORDER BY 1, 2, 3'
      : 'SELECT projection, topic, partition, next_offset FROM sync_offsets WHERE projection = $1 ORDER BY 1, 2, 3',
    projection === undefined ? [] : [projection],
  );
  return rows.map((row) => ({ projection: row.projection, topic: row.topic, partition: row.partition, nextOffset: BigInt(row.next_offset) }));
}
