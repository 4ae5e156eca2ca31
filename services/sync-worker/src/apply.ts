import type { Envelope } from '@switchyard/events';
import type { ConsumedRecord, DeadLetterReason } from '@switchyard/kafka';
import type pg from 'pg';
import { isDataError } from './db.js';
import type { PositionedEvent, Projection, TableMap } from './projections/index.js';

export interface Rejected {
  readonly record: ConsumedRecord;
  readonly why: DeadLetterReason;
}

export interface ApplyOutcome {
  readonly applied: number;
  readonly rejected: Rejected[];
}

function positioned(record: ConsumedRecord<Envelope>): PositionedEvent {
  if (!record.decoded.ok) throw new Error('positioned() needs a decoded record');
  return { event: record.decoded.event, topic: record.topic, partition: record.partition, offset: record.offset };
}

/**
 * Applies a partition's records to a projection's tables inside the caller's open transaction. Records that did
 * not decode are rejected with their decode error.
 *
 * - `mode: 'batch'` applies all good records with the projection's set-based statements. A refusal by Postgres
 *   (see `isDataError`) aborts the caller's transaction; the caller then starts over in `isolate` mode.
 * - `mode: 'isolate'` applies record by record under savepoints, so only the offending records are rejected
 *   (SYNC_UNPROJECTABLE) and the rest still land. Slower, and only used after a refusal.
 */
export async function applyRecords(
  client: pg.ClientBase,
  projection: Projection,
  records: readonly ConsumedRecord<Envelope>[],
  tables: TableMap<string>,
  mode: 'batch' | 'isolate' = 'batch',
): Promise<ApplyOutcome> {
  const rejected: Rejected[] = [];
  const good: ConsumedRecord<Envelope>[] = [];
  for (const record of records) {
    if (record.decoded.ok) good.push(record);
    else {
      const { error } = record.decoded;
      rejected.push({ record, why: { code: error.code, reason: error.message, field: error.field } });
    }
  }
  if (good.length === 0) return { applied: 0, rejected };
  if (mode === 'batch') {
    await projection.apply(client, good.map(positioned), tables);
    return { applied: good.length, rejected };
  }

  let applied = 0;
  for (const record of good) {
    await client.query('SAVEPOINT one');
    try {
      await projection.apply(client, [positioned(record)], tables);
      await client.query('RELEASE SAVEPOINT one');
      applied += 1;
    } catch (error) {
      if (!isDataError(error)) throw error;
      await client.query('ROLLBACK TO SAVEPOINT one');
      rejected.push({
        record,
        why: { code: 'SYNC_UNPROJECTABLE', reason: `postgres refused the event: ${(error as Error).message}` },
      });
    }
  }
  return { applied, rejected };
}
