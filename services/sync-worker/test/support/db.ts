import { isDeepStrictEqual } from 'node:util';
import type { Envelope } from '@switchyard/events';
import type pg from 'pg';
import type { EntityChange } from '../../src/projections/entities.js';
import type { ModelRow } from './model.js';

export interface StoredEntity {
  key: string;
  version: string;
  deleted: boolean;
  state: unknown;
  lastEventId: string;
  changedByType: string | null;
  changedBy: string | null;
}

export async function readEntities(pool: pg.Pool, table = 'entities'): Promise<Map<string, StoredEntity>> {
  const { rows } = await pool.query<{
    key: string;
    version: string;
    deleted: boolean;
    state: unknown;
    last_event_id: string;
    changed_by_type: string | null;
    changed_by: string | null;
  }>(
    `SELECT source || ':' || entity_type || ':' || entity_id AS key, version, deleted, state, last_event_id, changed_by_type, changed_by
       FROM "${table}"`,
  );
  return new Map(
    rows.map((row) => [
      row.key,
      {
        key: row.key,
        version: row.version,
        deleted: row.deleted,
        state: row.state,
        lastEventId: row.last_event_id,
        changedByType: row.changed_by_type,
        changedBy: row.changed_by,
      },
    ]),
  );
}

/** The envelope an entity change came from (the projection reads changes back out of it). */
export function envelopeOf(change: EntityChange): Envelope {
  return {
    specversion: '1.0',
    id: change.eventId,
    source: 'test',
    type: change.eventType,
    subject: `${change.source}:${change.entityType}:${change.entityId}`,
    time: change.time,
    datacontenttype: 'application/json',
    correlationid: change.eventId,
    entityversion: change.version,
    ...(change.auth === undefined ? {} : { authtype: change.auth.type, ...(change.auth.id === undefined ? {} : { authid: change.auth.id }) }),
    data: {
      source: change.source,
      entityType: change.entityType,
      entityId: change.entityId,
      version: change.version,
      origin: change.origin,
      state: change.state,
    },
  };
}

/** Keys whose stored row differs from the model's (missing, extra, or any of version, deleted, state, lineage, changed by). */
export function entityMismatches(model: ReadonlyMap<string, ModelRow>, stored: ReadonlyMap<string, StoredEntity>): string[] {
  const wrong = [...model].filter(([key, row]) => {
    const got = stored.get(key);
    if (!got) return true;
    const { version, deleted, state, lastEventId, changedByType, changedBy } = got;
    return !isDeepStrictEqual({ version, deleted, state, lastEventId, changedByType, changedBy }, row);
  });
  return [...wrong.map(([key]) => key), ...[...stored.keys()].filter((key) => !model.has(key))];
}
