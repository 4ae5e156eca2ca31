import type { Envelope } from '@switchyard/events';
import type { ConsumedRecord, DeadLetterReason } from '@switchyard/kafka';
import type pg from 'pg';
import { isDataError } from './db.js';
import { runStatements, type PositionedEvent, type Projection, type Statement, type TableMap } from './projections/index.js';

export interface Rejected {
  readonly record: ConsumedRecord;
  readonly why: DeadLetterReason;
}

export interface ApplyOutcome {
  readonly applied: number;
  readonly rejected: Rejected[];
}

/** A batch made ready outside any transaction: the decoded records, the refused ones, and the statements. */
export interface PreparedBatch {
  readonly good: readonly ConsumedRecord<Envelope>[];
  readonly rejected: readonly Rejected[];
  readonly statements: readonly Statement[];
}

function positioned(record: ConsumedRecord<Envelope>): PositionedEvent {
  if (!record.decoded.ok) throw new Error('positioned() needs a decoded record');
  const raw = record.text;
  return { event: record.decoded.event, topic: record.topic, partition: record.partition, offset: record.offset, ...(raw === null ? {} : { raw }) };
}

/**
 * Pure: splits records into those that decoded and those that did not (rejected with their decode error), and
 * builds the projection's statements for the good ones. Runs before the transaction opens, so Postgres never waits
 * inside a transaction for Node to build them.
 */
export function prepareBatch(projection: Projection, records: readonly ConsumedRecord<Envelope>[], tables: TableMap<string>): PreparedBatch {
  const rejected: Rejected[] = [];
  const good: ConsumedRecord<Envelope>[] = [];
  for (const record of records) {
    if (record.decoded.ok) good.push(record);
    else {
      const { error } = record.decoded;
      rejected.push({ record, why: { code: error.code, reason: error.message, field: error.field } });
    }
  }
  return { good, rejected, statements: good.length === 0 ? [] : projection.statements(good.map(positioned), tables) };
}

/**
 * Runs a prepared batch's set-based statements in the caller's open transaction. A refusal by Postgres (see
 * `isDataError`) aborts that transaction; the caller then starts over with `applyIsolated`.
 */
export async function applyPrepared(client: pg.ClientBase, prepared: PreparedBatch): Promise<ApplyOutcome> {
  await runStatements(client, prepared.statements);
  return { applied: prepared.good.length, rejected: [...prepared.rejected] };
}

/**
 * Applies record by record under savepoints in the caller's open transaction, so only the records Postgres refuses
 * are rejected (SYNC_UNPROJECTABLE) and the rest still land. Slower; only used after a refusal.
 */
export async function applyIsolated(
  client: pg.ClientBase,
  projection: Projection,
  prepared: PreparedBatch,
  tables: TableMap<string>,
): Promise<ApplyOutcome> {
  const rejected: Rejected[] = [...prepared.rejected];
  let applied = 0;
  for (const record of prepared.good) {
    await client.query('SAVEPOINT one');
    try {
      await runStatements(client, projection.statements([positioned(record)], tables));
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
