import { createEvent, type AuthContext, type Envelope } from '@switchyard/events';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { commandLogRows, mergeCommandLog, STATUS_RANK, type CommandLogRow } from '../src/projections/command-log.js';
import { entityRounds, evolveEntity, type EntityRow } from '../src/projections/entities.js';
import { AUTHS, batchCuts, change, changeSequences, foldModel, splitIntoBatches } from './support/model.js';

/** What the table does with a batch: reduce to rounds of one change per entity, apply each with the guard. */
function applyBatches(batches: readonly (readonly ReturnType<typeof change>[])[]) {
  const table = new Map<string, EntityRow>();
  for (const batch of batches) {
    for (const round of entityRounds(batch)) {
      for (const { change: winner, firstSeen } of round) {
        const key = `${winner.source}:${winner.entityType}:${winner.entityId}`;
        const held = table.get(key);
        table.set(key, evolveEntity(held ?? undefined, winner));
        if (held === undefined) table.set(key, { ...table.get(key)!, firstSeenAt: firstSeen });
      }
    }
  }
  return table;
}

describe('entities projection (model-based)', () => {
  it('equals the one-event-at-a-time fold for any batching, duplicates and late events included', () => {
    fc.assert(
      fc.property(changeSequences, batchCuts, (changes, cuts) => {
        const table = applyBatches(splitIntoBatches(changes, cuts));
        const model = foldModel(changes);
        expect([...table.keys()].sort()).toEqual([...model.keys()].sort());
        for (const [key, expected] of model) {
          const row = table.get(key);
          expect({
            version: row?.version,
            deleted: row?.deleted,
            state: row?.state,
            lastEventId: row?.lastEventId,
            changedByType: row?.changedByType,
            changedBy: row?.changedBy,
          }).toEqual(expected);
        }
      }),
      { numRuns: 500 },
    );
  });

  it('converges to the highest version whatever the delivery order', () => {
    fc.assert(
      fc.property(changeSequences, fc.integer(), (changes, seed) => {
        const shuffled = fc.sample(fc.shuffledSubarray(changes, { minLength: changes.length }), { seed, numRuns: 1 })[0] ?? changes;
        const a = applyBatches([changes]);
        const b = applyBatches(shuffled.map((one) => [one]));
        for (const [key, row] of a) {
          expect(b.get(key)?.version).toBe(row.version);
          // Two different events with one version are the producer's contradiction; the first delivered wins, so
          // only a unique highest version decides `deleted` independently of order.
          const top = changes.filter((c) => `${c.source}:${c.entityType}:${c.entityId}` === key && c.version === row.version);
          if (new Set(top.map((c) => c.deleted)).size === 1) expect(b.get(key)?.deleted).toBe(row.deleted);
        }
      }),
      { numRuns: 300 },
    );
  });

  it('inserts a row with the time of the first event that created it', () => {
    const table = applyBatches([[change(1, 5, 0, false, 'a'), change(1, 2, 0, false, 'b')]]);
    expect(table.get('github:issue:acme/widgets#1')?.firstSeenAt).toBe(change(1, 5, 0, false, 'a').time);
  });

  it('does not let an older upsert revive a deletion', () => {
    const deleted = change(1, 5, 0, true, 'delete');
    const late = change(1, 4, 2, false, 'late-upsert');
    const row = applyBatches([[change(1, 3, 0, false, 'first')], [deleted], [late]]).get('github:issue:acme/widgets#1');
    expect(row).toMatchObject({ deleted: true, lastEventId: 'delete' });
  });

  it('says who changed the row: the Auth Context of the event that produced it, none when that event has none', () => {
    const key = 'github:issue:acme/widgets#1';
    const byKey = change(1, 3, 0, false, 'by-key', true, { type: 'api_key', id: 'sy_00000000000000a1' });
    const byPoll = change(1, 4, 0, false, 'by-poll', true, undefined);
    const lateByOtherKey = change(1, 2, 0, false, 'late', true, { type: 'api_key', id: 'sy_00000000000000b2' });
    expect(applyBatches([[byKey]]).get(key)).toMatchObject({ changedByType: 'api_key', changedBy: 'sy_00000000000000a1' });
    // A newer change without Auth Context leaves no one named; an older one changes nothing.
    expect(applyBatches([[byKey], [byPoll]]).get(key)).toMatchObject({ lastEventId: 'by-poll', changedByType: null, changedBy: null });
    expect(applyBatches([[byKey, lateByOtherKey]]).get(key)).toMatchObject({ lastEventId: 'by-key', changedBy: 'sy_00000000000000a1' });
  });

  it('treats the same version twice as a no-op, keeping the first', () => {
    const first = change(1, 5, 0, false, 'first');
    const again = { ...change(1, 5, 0, false, 'second') };
    expect(applyBatches([[first, again]]).get('github:issue:acme/widgets#1')?.lastEventId).toBe('first');
    expect(applyBatches([[first], [again]]).get('github:issue:acme/widgets#1')?.lastEventId).toBe('first');
  });
});

function result(commandId: string, status: 'accepted' | 'succeeded' | 'failed' | 'rejected', at: number, auth?: AuthContext): Envelope {
  return createEvent({
    type: `switchyard.command.${status}`,
    source: 'test',
    time: new Date(1_700_000_000_000 + at),
    correlationId: 'c',
    auth,
    data: { commandId, commandType: 'github.issue.create', status, ...(status === 'failed' ? { error: { code: 'X', message: 'm', retriable: false } } : {}) },
  });
}

function request(commandId: string, at: number, auth?: AuthContext): Envelope {
  return createEvent({
    type: 'github.issue.create',
    id: commandId,
    source: 'test',
    subject: 'github:repository:acme/widgets',
    time: new Date(1_700_000_000_000 + at),
    correlationId: 'c',
    auth,
    data: { connection: 'github', idempotencyKey: commandId, input: { owner: 'acme', repo: 'widgets', title: 't' } },
  });
}

describe('command log projection', () => {
  it('ends in the terminal status with the request details, wherever the request lands and with redeliveries', () => {
    // Results of one command share a partition (keyed by command id), so they arrive in order; the request comes
    // from the commands topic and can land anywhere relative to them, and any result can be delivered again.
    const results = [result('cmd', 'accepted', 1), result('cmd', 'failed', 2)];
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 2 }), fc.array(fc.integer({ min: 0, max: 1 }), { maxLength: 3 }), (at, redelivered) => {
        const events = [...results, ...redelivered.map((index) => results[index]!)];
        events.splice(at, 0, request('cmd', 0));
        let row: CommandLogRow | undefined;
        for (const event of events) for (const next of commandLogRows([event]).log) row = mergeCommandLog(row, next);
        expect(row).toMatchObject({
          status: 'failed',
          error_code: 'X',
          target: 'github:repository:acme/widgets',
          command_type: 'github.issue.create',
          input: { owner: 'acme', repo: 'widgets', title: 't' },
        });
        expect(STATUS_RANK[row!.status]).toBe(2);
      }),
    );
  });

  it('keeps the Auth Context of the command, else the one its results carry, and never replaces it by none', () => {
    // The command may carry any Auth Context or none; each result repeats it, or (another producer) carries none
    // or another. Whatever the order and redeliveries: the command's when it has one, else the first a result
    // brought, else none.
    const auths = fc.constantFrom(...AUTHS);
    fc.assert(
      fc.property(
        auths,
        fc.array(fc.oneof(fc.constant('same' as const), auths), { minLength: 1, maxLength: 3 }),
        fc.integer({ min: 0, max: 3 }),
        fc.array(fc.nat(), { maxLength: 3 }),
        (commandAuth, resultAuths, at, redelivered) => {
          const statuses = ['accepted', 'succeeded', 'succeeded'] as const;
          const results = resultAuths.map((auth, index) => result('cmd', statuses[index]!, index + 1, auth === 'same' ? commandAuth : auth));
          const events = [...results, ...redelivered.map((index) => results[index % results.length]!)];
          events.splice(Math.min(at, events.length), 0, request('cmd', 0, commandAuth));
          let row: CommandLogRow | undefined;
          let firstSeen: AuthContext | undefined;
          let named = false;
          for (const event of events) {
            for (const next of commandLogRows([event]).log) row = mergeCommandLog(row, next);
            if (event.type !== 'github.issue.create' && firstSeen === undefined && event.authtype !== undefined) {
              firstSeen = { type: event.authtype, ...(event.authid === undefined ? {} : { id: event.authid }) };
            }
            // Once any event named someone, the row names someone.
            named ||= event.authtype !== undefined;
            if (named) expect(row?.auth_type).not.toBeNull();
          }
          const expected = commandAuth ?? firstSeen;
          expect({ auth_type: row?.auth_type, auth_id: row?.auth_id }).toEqual({ auth_type: expected?.type ?? null, auth_id: expected?.id ?? null });
        },
      ),
      { numRuns: 300 },
    );
  });

  it('records the key a command was sent with, from the command or from a result that arrived first', () => {
    const key = { type: 'api_key', id: 'sy_00000000000000a1' } as const;
    const { log } = commandLogRows([result('a', 'accepted', 1, key), request('a', 0), request('b', 0, key), result('b', 'accepted', 1)]);
    expect(log.map((row) => [row.command_id, row.auth_type, row.auth_id])).toEqual([
      ['a', 'api_key', 'sy_00000000000000a1'],
      ['b', 'api_key', 'sy_00000000000000a1'],
    ]);
    // Straight to Kafka, nothing set by its producer: no one is named.
    expect(commandLogRows([request('c', 0), result('c', 'succeeded', 1)]).log[0]).toMatchObject({ auth_type: null, auth_id: null });
  });

  it('records one timeline row per result event', () => {
    const { log, timeline } = commandLogRows([request('a', 0), result('a', 'accepted', 1), result('a', 'succeeded', 2), result('b', 'rejected', 3)]);
    expect(log.map((row) => [row.command_id, row.status])).toEqual([
      ['a', 'succeeded'],
      ['b', 'rejected'],
    ]);
    expect(timeline.map((row) => row.status)).toEqual(['accepted', 'succeeded', 'rejected']);
  });
});
