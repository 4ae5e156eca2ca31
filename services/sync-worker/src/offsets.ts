import type pg from 'pg';

/**
 * Consumer positions, one row per (projection, topic, partition): the next offset to apply. Read with FOR UPDATE
 * at the start of every batch transaction, so two members that briefly both hold a partition during a rebalance
 * serialise on the row, and the second sees what the first committed.
 */
export async function lockOffset(client: pg.ClientBase, projection: string, topic: string, partition: number): Promise<bigint> {
  const select = 'SELECT next_offset FROM sync_offsets WHERE projection = $1 AND topic = $2 AND partition = $3 FOR UPDATE';
  let result = await client.query<{ next_offset: string }>({ name: 'lock-offset', text: select, values: [projection, topic, partition] });
  if (result.rowCount === 0) {
    await client.query(
      'INSERT INTO sync_offsets (projection, topic, partition, next_offset) VALUES ($1, $2, $3, 0) ON CONFLICT DO NOTHING',
      [projection, topic, partition],
    );
    result = await client.query<{ next_offset: string }>({ name: 'lock-offset', text: select, values: [projection, topic, partition] });
  }
  return BigInt(result.rows[0]?.next_offset ?? '0');
}

export async function saveOffset(
  client: pg.ClientBase,
  projection: string,
  topic: string,
  partition: number,
  nextOffset: string,
): Promise<void> {
  await client.query({
    name: 'save-offset',
    text: 'UPDATE sync_offsets SET next_offset = $4, updated_at = now() WHERE projection = $1 AND topic = $2 AND partition = $3',
    values: [projection, topic, partition, nextOffset],
  });
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
