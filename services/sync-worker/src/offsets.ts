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
    await client.query(
      'INSERT INTO sync_offsets (projection, topic, partition, next_offset) VALUES ($1, $2, $3, 0) ON CONFLICT DO NOTHING',
      [projection, topic, partition],
    );
    row = (await client.query<Row>(select)).rows[0];
  }
  return { next: BigInt(row?.next_offset ?? '0'), cluster: row?.kafka_cluster ?? null };
}

/** Store the partition's new position, then COMMIT. */
export async function saveAndCommit(
  client: pg.ClientBase,
  position: { projection: string; topic: string; partition: number; cluster: string },
  nextOffset: string,
): Promise<void> {
  const where = partitionRow(client, position.projection, position.topic, position.partition);
  await client.query(
    `UPDATE sync_offsets SET next_offset = ${BigInt(nextOffset)}, kafka_cluster = ${client.escapeLiteral(position.cluster)}, updated_at = now() WHERE ${where}; COMMIT`,
  );
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
