import { entityVersion, type AuthContext, type EntityVersion } from '@switchyard/events';
import fc from 'fast-check';
import type { EntityChange } from '../../src/projections/entities.js';

/** The simplest possible statement of what the entities table must hold: fold events one at a time, in order. */
export interface ModelRow {
  version: EntityVersion;
  deleted: boolean;
  state: unknown;
  lastEventId: string;
  /** The Auth Context of the event that produced the row. */
  changedByType: string | null;
  changedBy: string | null;
}

export function foldModel(changes: readonly EntityChange[]): Map<string, ModelRow> {
  const rows = new Map<string, ModelRow>();
  for (const change of changes) {
    const key = `${change.source}:${change.entityType}:${change.entityId}`;
    const current = rows.get(key);
    if (current !== undefined && change.version <= current.version) continue;
    rows.set(key, {
      version: change.version,
      deleted: change.deleted,
      state: change.deleted && change.state === null ? (current?.state ?? null) : change.state,
      lastEventId: change.eventId,
      changedByType: change.auth?.type ?? null,
      changedBy: change.auth?.id ?? null,
    });
  }
  return rows;
}

/** The Auth Contexts changes are drawn from: two keys, a service account without an id, and none. */
export const AUTHS: readonly (AuthContext | undefined)[] = [
  { type: 'api_key', id: 'sy_00000000000000a1' },
  { type: 'api_key', id: 'sy_00000000000000b2' },
  { type: 'system' },
  undefined,
];

/** A change with a small version space, so equal versions (duplicates) and reordering are common. */
export function change(
  entity: number,
  versionSeconds: number,
  tiebreak: number,
  deleted: boolean,
  id: string,
  withState = true,
  auth?: AuthContext,
): EntityChange {
  const version = entityVersion(BigInt(1_700_000_000 + versionSeconds) * 1_000_000n, 1_700_000_000_000_000n + BigInt(tiebreak));
  return {
    source: 'github',
    entityType: 'issue',
    entityId: `acme/widgets#${entity}`,
    version,
    deleted,
    state: deleted && !withState ? null : { number: entity, title: `v${versionSeconds}.${tiebreak}`, id },
    eventId: id,
    eventType: deleted ? 'github.issue.deleted' : 'github.issue.upserted',
    time: new Date(1_700_000_000_000 + versionSeconds * 1000).toISOString(),
    origin: { kind: 'poll', id: 'run', connection: 'github' },
    auth,
    topic: 't',
    partition: 0,
    offset: '0',
    raw: '', // not read by the fold; the SQL path gets the event's own text
  };
}

/**
 * Sequences of changes over a few entities: versions drawn from a small range (so duplicates and late, older
 * events are common), deletions with and without state, each sequence then split into batches at random points.
 */
export const changeSequences = fc
  .array(
    fc.record({
      entity: fc.integer({ min: 1, max: 5 }),
      seconds: fc.integer({ min: 0, max: 8 }),
      tiebreak: fc.integer({ min: 0, max: 2 }),
      deleted: fc.boolean(),
      withState: fc.boolean(),
      duplicate: fc.boolean(),
      auth: fc.integer({ min: 0, max: AUTHS.length - 1 }),
    }),
    { minLength: 1, maxLength: 60 },
  )
  .map((specs) => {
    const changes: EntityChange[] = [];
    specs.forEach((spec, index) => {
      const next = change(spec.entity, spec.seconds, spec.tiebreak, spec.deleted, `e${index}`, spec.withState, AUTHS[spec.auth]);
      changes.push(next);
      // An exact redelivery of the same event.
      if (spec.duplicate) changes.push({ ...next });
    });
    return changes;
  });

export const batchCuts = fc.array(fc.integer({ min: 0, max: 200 }), { maxLength: 10 });

export function splitIntoBatches<T>(items: readonly T[], cuts: readonly number[]): T[][] {
  const points = [...new Set(cuts.map((cut) => cut % (items.length + 1)))].sort((a, b) => a - b);
  const batches: T[][] = [];
  let from = 0;
  for (const point of [...points, items.length]) {
    if (point > from) batches.push(items.slice(from, point));
    from = Math.max(from, point);
  }
  return batches;
}
