import { authContextOf, parseEntityEventType, topics, type AuthContext, type EntityEventData, type EntityVersion, type Envelope } from '@switchyard/events';
import { quoteIdent, type PositionedEvent, type Projection, type TableMap } from './types.js';

/** One entity event reduced to what the entities table records. */
export interface EntityChange {
  readonly source: string;
  readonly entityType: string;
  readonly entityId: string;
  readonly version: EntityVersion;
  readonly deleted: boolean;
  /** Full state for upserts; the last known state (or null) for deletions. */
  readonly state: unknown;
  readonly eventId: string;
  readonly eventType: string;
  readonly time: string;
  readonly origin: EntityEventData['origin'];
  /** The event's CloudEvents Auth Context: who asked for the change (an API key's id for a command over HTTP). */
  readonly auth: AuthContext | undefined;
  readonly topic: string;
  readonly partition: number;
  readonly offset: string;
  /** The event's JSON text, from which Postgres takes `data.state` as it was produced. */
  readonly raw: string;
}

export function entityChangeKey(change: Pick<EntityChange, 'source' | 'entityType' | 'entityId'>): string {
  return `${change.source}:${change.entityType}:${change.entityId}`;
}

export function toEntityChange({ event, topic, partition, offset, raw }: PositionedEvent): EntityChange {
  const data = event.data as EntityEventData;
  return {
    source: data.source,
    entityType: data.entityType,
    entityId: data.entityId,
    version: data.version,
    deleted: parseEntityEventType(event.type)?.change === 'deleted',
    state: data.state,
    eventId: event.id,
    eventType: event.type,
    time: event.time,
    origin: data.origin,
    auth: authContextOf(event),
    topic,
    partition,
    offset,
    raw: raw ?? JSON.stringify(event),
  };
}

/** The row the table holds for one entity (the part the fold decides). */
export interface EntityRow {
  readonly version: EntityVersion;
  readonly deleted: boolean;
  readonly state: unknown;
  readonly firstSeenAt: string;
  readonly lastEventId: string;
  /** The Auth Context of the event that produced the row: `changed_by_type`, `changed_by`. */
  readonly changedByType: string | null;
  readonly changedBy: string | null;
}

/**
 * The fold: a change replaces the row only when its version is strictly newer. An equal version is a duplicate and
 * changes nothing; an older one arrived late and changes nothing. A deletion keeps the last known state when it
 * carries none.
 */
export function evolveEntity(current: EntityRow | undefined, change: EntityChange): EntityRow {
  if (current !== undefined && !(change.version > current.version)) return current;
  return {
    version: change.version,
    deleted: change.deleted,
    state: change.deleted && change.state === null ? (current?.state ?? null) : change.state,
    firstSeenAt: current?.firstSeenAt ?? change.time,
    lastEventId: change.eventId,
    changedByType: change.auth?.type ?? null,
    changedBy: change.auth?.id ?? null,
  };
}

export interface ReducedChange {
  readonly change: EntityChange;
  /** Time of the first event of the reduced run: the row's first_seen_at if this inserts it. */
  readonly firstSeen: string;
}

/**
 * Reduces a batch to rounds of at most one change per entity, so each round is one INSERT … ON CONFLICT
 * (Postgres refuses to update a row twice in one statement), and applying the rounds in order equals folding the
 * batch one event at a time with `evolveEntity`:
 * - a run of an entity's changes collapses to its highest version (the earliest of equals), because every
 *   applied change overwrites the whole row;
 * - a deletion without state keeps the state held just before it, so it ends the run and gets a round of its own.
 * Almost every batch is a single round.
 */
export function entityRounds(changes: readonly EntityChange[]): ReducedChange[][] {
  const runs = new Map<string, { winner: EntityChange; firstSeen: string; closed: boolean }[]>();
  for (const change of changes) {
    const key = entityChangeKey(change);
    const list = runs.get(key) ?? [];
    if (list.length === 0) runs.set(key, list);
    const run = list[list.length - 1];
    const statelessDeletion = change.deleted && change.state === null;
    if (run === undefined || run.closed || statelessDeletion) {
      list.push({ winner: change, firstSeen: change.time, closed: statelessDeletion });
    } else if (change.version > run.winner.version) {
      run.winner = change;
    }
  }
  const rounds: ReducedChange[][] = [];
  for (const list of runs.values()) {
    list.forEach((run, index) => {
      (rounds[index] ??= []).push({ change: run.winner, firstSeen: run.firstSeen });
    });
  }
  return rounds;
}

/**
 * The statement behind the fold. Rows travel as one JSON document, read as jsonb: each element carries the small
 * columns and, under `e`, the event exactly as it arrived, from which Postgres takes `data.state` as a binary
 * sub-document — Node never serialises a state again, and the stored state is the producer's, byte for byte in
 * meaning (no number rounding, no defaults added). `WHERE excluded.version > t.version` is the version guard; a
 * deletion without state keeps the stored state.
 */
export function upsertEntitiesSql(table: string): string {
  const t = quoteIdent(table);
  return `
INSERT INTO ${t} AS t (source, entity_type, entity_id, version, state, deleted, first_seen_at, last_changed_at,
  last_event_id, last_event_type, origin, origin_id, connection, kafka_topic, kafka_partition, kafka_offset,
  changed_by_type, changed_by)
SELECT r.source, r.entity_type, r.entity_id, r.version, NULLIF(r.e -> 'data' -> 'state', 'null'::jsonb), r.deleted,
  r.first_seen_at, r.last_changed_at, r.last_event_id, r.last_event_type, r.origin, r.origin_id, r.connection,
  r.kafka_topic, r.kafka_partition, r.kafka_offset, r.changed_by_type, r.changed_by
FROM jsonb_to_recordset($1::jsonb) AS r(source text, entity_type text, entity_id text, version text,
  deleted boolean, first_seen_at timestamptz, last_changed_at timestamptz, last_event_id text, last_event_type text,
  origin text, origin_id text, connection text, kafka_topic text, kafka_partition integer, kafka_offset bigint,
  changed_by_type text, changed_by text, e jsonb)
ON CONFLICT (source, entity_type, entity_id) DO UPDATE SET
  version = excluded.version,
  state = CASE WHEN excluded.deleted AND excluded.state IS NULL THEN t.state ELSE excluded.state END,
  deleted = excluded.deleted,
  last_changed_at = excluded.last_changed_at,
  last_event_id = excluded.last_event_id,
  last_event_type = excluded.last_event_type,
  origin = excluded.origin,
  origin_id = excluded.origin_id,
  connection = excluded.connection,
  kafka_topic = excluded.kafka_topic,
  kafka_partition = excluded.kafka_partition,
  kafka_offset = excluded.kafka_offset,
  changed_by_type = excluded.changed_by_type,
  changed_by = excluded.changed_by
WHERE excluded.version > t.version`;
}

const text = JSON.stringify;

/** The statement's parameter, built by concatenation: the raw event text goes in without being parsed again. */
export function entityRowsJson(round: readonly ReducedChange[]): string {
  const rows = round.map(({ change, firstSeen }) =>
    `{"source":${text(change.source)},"entity_type":${text(change.entityType)},"entity_id":${text(change.entityId)},` +
    `"version":${text(change.version)},"deleted":${change.deleted},"first_seen_at":${text(firstSeen)},` +
    `"last_changed_at":${text(change.time)},"last_event_id":${text(change.eventId)},"last_event_type":${text(change.eventType)},` +
    `"origin":${text(change.origin.kind)},"origin_id":${text(change.origin.id)},"connection":${text(change.origin.connection)},` +
    `"kafka_topic":${text(change.topic)},"kafka_partition":${change.partition},"kafka_offset":${text(change.offset)},` +
    `"changed_by_type":${text(change.auth?.type ?? null)},"changed_by":${text(change.auth?.id ?? null)},"e":${change.raw}}`,
  );
  return `[${rows.join(',')}]`;
}

type EntityTables = 'entities';

export const entitiesProjection: Projection<EntityTables> = {
  name: 'entities',
  topics: [topics.entities],
  tables: { entities: 'entities' },
  statements(events: readonly PositionedEvent<Envelope>[], tables: TableMap<EntityTables>) {
    const text = upsertEntitiesSql(tables.entities);
    return entityRounds(events.map(toEntityChange)).map((round) => ({ text, values: [entityRowsJson(round)] }));
  },
};
