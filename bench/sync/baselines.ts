import type { Envelope } from '@switchyard/events';
import type pg from 'pg';
import { from as copyFrom } from 'pg-copy-streams';

/** One entities row, as the worker would write it: what the baselines write too. */
export interface EntityRow {
  source: string;
  entity_type: string;
  entity_id: string;
  version: string;
  state: string;
  deleted: boolean;
  first_seen_at: Date;
  last_changed_at: Date;
  last_event_id: string;
  last_event_type: string;
  origin: string;
  origin_id: string;
  connection: string;
  kafka_topic: string;
  kafka_partition: number;
  kafka_offset: bigint;
}

export function rowsOf(events: readonly Envelope[], topic: string): EntityRow[] {
  return events.map((event, index) => {
    const data = event.data as {
      source: string;
      entityType: string;
      entityId: string;
      version: string;
      origin: { kind: string; id: string; connection: string };
      state: unknown;
    };
    return {
      source: data.source,
      entity_type: data.entityType,
      entity_id: data.entityId,
      version: data.version,
      state: JSON.stringify(data.state),
      deleted: false,
      first_seen_at: new Date(event.time),
      last_changed_at: new Date(event.time),
      last_event_id: event.id,
      last_event_type: event.type,
      origin: data.origin.kind,
      origin_id: data.origin.id,
      connection: data.origin.connection,
      kafka_topic: topic,
      kafka_partition: index % 6,
      kafka_offset: BigInt(index),
    };
  });
}

const COLUMNS = [
  'source',
  'entity_type',
  'entity_id',
  'version',
  'state',
  'deleted',
  'first_seen_at',
  'last_changed_at',
  'last_event_id',
  'last_event_type',
  'origin',
  'origin_id',
  'connection',
  'kafka_topic',
  'kafka_partition',
  'kafka_offset',
] as const;
const TYPES = ['text', 'text', 'text', 'text', 'jsonb', 'bool', 'timestamptz', 'timestamptz', 'text', 'text', 'text', 'text', 'text', 'text', 'int4', 'int8'];

/** The same version guard the worker applies, so both write exactly what the fold says. */
const ON_CONFLICT = `ON CONFLICT (source, entity_type, entity_id) DO UPDATE SET
  version = excluded.version, state = excluded.state, deleted = excluded.deleted,
  last_changed_at = excluded.last_changed_at, last_event_id = excluded.last_event_id,
  last_event_type = excluded.last_event_type, origin = excluded.origin, origin_id = excluded.origin_id,
  connection = excluded.connection, kafka_topic = excluded.kafka_topic, kafka_partition = excluded.kafka_partition,
  kafka_offset = excluded.kafka_offset
WHERE excluded.version > entities.version`;

const UNNEST_SQL = `INSERT INTO entities (${COLUMNS.join(', ')})
SELECT * FROM unnest(${COLUMNS.map((_, index) => `$${index + 1}::${TYPES[index]}[]`).join(', ')})
${ON_CONFLICT}`;

/** `INSERT … SELECT FROM unnest($1::text[], …) ON CONFLICT DO UPDATE`: one array parameter per column. */
export async function writeWithUnnest(client: pg.ClientBase, rows: readonly EntityRow[]): Promise<void> {
  await client.query(
    UNNEST_SQL,
    COLUMNS.map((column) => rows.map((row) => (column === 'kafka_offset' ? row.kafka_offset.toString() : row[column]))),
  );
}

// Binary COPY (https://www.postgresql.org/docs/current/sql-copy.html, "Binary Format").
const SIGNATURE = Buffer.from('PGCOPY\n\xff\r\n\0', 'latin1');
const POSTGRES_EPOCH_MS = Date.UTC(2000, 0, 1);

function field(bytes: Buffer): Buffer[] {
  const length = Buffer.alloc(4);
  length.writeInt32BE(bytes.length);
  return [length, bytes];
}

function text(value: string): Buffer[] {
  return field(Buffer.from(value, 'utf8'));
}

function timestamptz(value: Date): Buffer[] {
  const bytes = Buffer.alloc(8);
  bytes.writeBigInt64BE(BigInt(value.getTime() - POSTGRES_EPOCH_MS) * 1000n);
  return field(bytes);
}

/** The binary COPY stream of `rows`, header and trailer included. */
export function binaryCopy(rows: readonly EntityRow[]): Buffer {
  const header = Buffer.alloc(8);
  const parts: Buffer[] = [SIGNATURE, header];
  for (const row of rows) {
    const count = Buffer.alloc(2);
    count.writeInt16BE(COLUMNS.length);
    const int4 = Buffer.alloc(4);
    int4.writeInt32BE(row.kafka_partition);
    const int8 = Buffer.alloc(8);
    int8.writeBigInt64BE(row.kafka_offset);
    parts.push(
      count,
      ...text(row.source),
      ...text(row.entity_type),
      ...text(row.entity_id),
      ...text(row.version),
      ...field(Buffer.concat([Buffer.from([1]), Buffer.from(row.state, 'utf8')])), // jsonb: version byte, then text
      ...field(Buffer.from([row.deleted ? 1 : 0])),
      ...timestamptz(row.first_seen_at),
      ...timestamptz(row.last_changed_at),
      ...text(row.last_event_id),
      ...text(row.last_event_type),
      ...text(row.origin),
      ...text(row.origin_id),
      ...text(row.connection),
      ...text(row.kafka_topic),
      ...field(int4),
      ...field(int8),
    );
  }
  const trailer = Buffer.alloc(2);
  trailer.writeInt16BE(-1);
  parts.push(trailer);
  return Buffer.concat(parts);
}

async function copyInto(client: pg.ClientBase, table: string, rows: readonly EntityRow[]): Promise<void> {
  const stream = client.query(copyFrom(`COPY ${table} (${COLUMNS.join(', ')}) FROM STDIN (FORMAT binary)`));
  await new Promise<void>((resolve, reject) => {
    stream.on('error', reject);
    stream.on('finish', resolve);
    stream.end(binaryCopy(rows));
  });
}

/** Binary COPY straight into the table: the floor for new keys (it cannot update). */
export async function writeWithCopy(client: pg.ClientBase, rows: readonly EntityRow[]): Promise<void> {
  await copyInto(client, 'entities', rows);
}

/** Binary COPY into a temporary staging table, then one INSERT … ON CONFLICT from it: how COPY upserts. */
export async function upsertWithCopy(client: pg.ClientBase, rows: readonly EntityRow[]): Promise<void> {
  await client.query('CREATE TEMP TABLE IF NOT EXISTS entities_staging (LIKE entities INCLUDING DEFAULTS) ON COMMIT DELETE ROWS');
  await copyInto(client, 'entities_staging', rows);
  await client.query(`INSERT INTO entities (${COLUMNS.join(', ')}) SELECT ${COLUMNS.join(', ')} FROM entities_staging ${ON_CONFLICT}`);
}

/**
 * Writes `batches` over `connections` connections, one transaction per batch, and returns rows per second — the
 * shape of the worker's own writes (a transaction per partition batch, a few at once).
 */
export async function timedWrites(
  pool: pg.Pool,
  batches: readonly (readonly EntityRow[])[],
  connections: number,
  write: (client: pg.ClientBase, rows: readonly EntityRow[]) => Promise<void>,
): Promise<{ rows: number; seconds: number; perSecond: number }> {
  let next = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: connections }, async () => {
      const client = await pool.connect();
      try {
        for (let index = next++; index < batches.length; index = next++) {
          await client.query('BEGIN');
          await write(client, batches[index]!);
          await client.query('COMMIT');
        }
      } finally {
        client.release();
      }
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  const rows = batches.reduce((sum, batch) => sum + batch.length, 0);
  return { rows, seconds, perSecond: rows / seconds };
}

export function inBatches<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let index = 0; index < items.length; index += size) out.push(items.slice(index, index + size));
  return out;
}
