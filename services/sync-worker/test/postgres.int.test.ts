import { writeFile, mkdtemp, cp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createEvent, type AuthContext, type Envelope } from '@switchyard/events';
import { test } from '@switchyard/testkit';
import fc from 'fast-check';
import type pg from 'pg';
import { describe, expect } from 'vitest';
import { migrate, MIGRATIONS_DIR } from '../src/migrate.js';
import { commandLogProjection } from '../src/projections/command-log.js';
import { entitiesProjection } from '../src/projections/entities.js';
import { runStatements } from '../src/projections/index.js';
import { envelopeOf, readEntities } from './support/db.js';
import { AUTHS, batchCuts, changeSequences, foldModel, splitIntoBatches } from './support/model.js';

describe('migrations', () => {
  test('apply once even when two workers start together, and refuse an edited migration', async ({ database }) => {
    const [a, b] = await Promise.all([migrate(database.pool), migrate(database.pool)]);
    expect([...a.applied, ...b.applied].sort()).toEqual(
      [
        '0001_offsets_and_entities',
        '0002_command_log_and_health',
        '0003_typed_views',
        '0004_projection_rebuilds',
        '0005_offsets_cluster',
        '0006_audit_trail',
        '0007_sync_instances',
        '0008_rebuild_error_code',
      ],
    );
    expect(a.alreadyApplied + b.alreadyApplied).toBe(8);

    const edited = await mkdtemp(join(tmpdir(), 'migrations-'));
    await cp(MIGRATIONS_DIR, edited, { recursive: true });
    await writeFile(join(edited, '0003_typed_views.sql'), '-- edited\n');
    await expect(migrate(database.pool, edited)).rejects.toMatchObject({ code: 'SYNC_MIGRATION_CHANGED' });
  });

  test('roll back a failing migration and report it', async ({ database }) => {
    const dir = await mkdtemp(join(tmpdir(), 'migrations-'));
    await writeFile(join(dir, '0001_ok.sql'), 'CREATE TABLE a (id int);');
    await writeFile(join(dir, '0002_broken.sql'), 'CREATE TABLE b (id int); SELECT * FROM nowhere;');
    await expect(migrate(database.pool, dir)).rejects.toMatchObject({ code: 'SYNC_MIGRATION_FAILED' });
    const tables = await database.pool.query("SELECT tablename FROM pg_tables WHERE tablename IN ('a', 'b')");
    expect(tables.rows.map((row: { tablename: string }) => row.tablename)).toEqual(['a']);
  });
});

describe('entities projection in Postgres (model-based)', () => {
  test('the table equals the one-event-at-a-time fold for random batches with duplicates and late events', async ({ database }) => {
    await migrate(database.pool);
    await fc.assert(
      fc.asyncProperty(changeSequences, batchCuts, async (changes, cuts) => {
        await database.pool.query('TRUNCATE entities');
        for (const batch of splitIntoBatches(changes, cuts)) {
          const client = await database.pool.connect();
          try {
            await client.query('BEGIN');
            await runStatements(
              client,
              entitiesProjection.statements(
                batch.map((change) => ({ event: envelopeOf(change), topic: 't', partition: 0, offset: '0' })),
                entitiesProjection.tables,
              ),
            );
            await client.query('COMMIT');
          } finally {
            client.release();
          }
        }
        const stored = await readEntities(database.pool);
        const model = foldModel(changes);
        expect([...stored.keys()].sort()).toEqual([...model.keys()].sort());
        for (const [key, expected] of model) {
          const row = stored.get(key);
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
      { numRuns: 60 },
    );
  });

  test('typed views expose real columns and leave deleted entities out', async ({ database }) => {
    await migrate(database.pool);
    const client = await database.pool.connect();
    const { change } = await import('./support/model.js');
    try {
      await runStatements(
        client,
        entitiesProjection.statements([change(1, 1, 0, false, 'a', true, AUTHS[0]), change(2, 1, 0, false, 'b'), change(2, 2, 0, true, 'c', false)].map((c) => ({
          event: envelopeOf({ ...c, state: c.state === null ? null : { ...(c.state as object), state: 'open', labels: [{ name: 'bug' }], updated_at: '2026-11-24T05:00:00Z', created_at: '2026-11-24T04:00:00Z' } }),
          topic: 't',
          partition: 0,
          offset: '0',
        })),
        entitiesProjection.tables,
        ),
      );
    } finally {
      client.release();
    }
    const { rows } = await database.pool.query(
      "SELECT repository, number, state, labels, updated_at, changed_by_type, changed_by FROM github_issues WHERE repository = 'acme/widgets' AND state = 'open'",
    );
    expect(rows).toEqual([
      {
        repository: 'acme/widgets',
        number: 1,
        state: 'open',
        labels: ['bug'],
        updated_at: new Date('2026-11-24T05:00:00Z'),
        changed_by_type: 'api_key',
        changed_by: AUTHS[0]?.id,
      },
    ]);
    // The view's column is served by the expression index (forced: a tiny table would be scanned anyway).
    const planner = await database.pool.connect();
    try {
      await planner.query('SET enable_seqscan = off');
      const plan = await planner.query("EXPLAIN SELECT * FROM github_issues WHERE updated_at > now() - interval '1 day'");
      expect(JSON.stringify(plan.rows)).toContain('github_issues_updated_at');
    } finally {
      planner.release();
    }
  });
});

interface CommandSpec {
  readonly auth: AuthContext | undefined;
  /** Whether each result repeats the command's Auth Context or carries none. */
  readonly results: readonly ('same' | 'none')[];
  /** False: only the results are projected (the command is not, or not yet). */
  readonly commandPresent: boolean;
  /** Where among its results the command lands. */
  readonly at: number;
}

function commandEvents(id: string, spec: CommandSpec): Envelope[] {
  const statuses = ['accepted', 'succeeded'] as const;
  const events: Envelope[] = spec.results.map((repeat, index) =>
    createEvent({
      type: `switchyard.command.${statuses[index]!}`,
      source: 'test',
      correlationId: id,
      causationId: id,
      auth: repeat === 'same' ? spec.auth : undefined,
      data: { commandId: id, commandType: 'github.issue.create', status: statuses[index]! },
    }),
  );
  if (spec.commandPresent) {
    events.splice(
      Math.min(spec.at, events.length),
      0,
      createEvent({
        type: 'github.issue.create',
        id,
        source: 'test',
        subject: 'github:repository:acme/widgets',
        correlationId: id,
        auth: spec.auth,
        data: { connection: 'github', idempotencyKey: id, input: { owner: 'acme', repo: 'widgets', title: id } },
      }),
    );
  }
  return events;
}

async function applyCommandLog(pool: pg.Pool, batches: readonly (readonly Envelope[])[]): Promise<void> {
  for (const batch of batches) {
    const client = await pool.connect();
    try {
      await client.query('BEGIN');
      const positioned = batch.map((event) => ({ event, topic: 't', partition: 0, offset: '0' }));
      await runStatements(client, commandLogProjection.statements(positioned, commandLogProjection.tables));
      await client.query('COMMIT');
    } finally {
      client.release();
    }
  }
}

async function storedAuth(pool: pg.Pool): Promise<Map<string, { auth_type: string | null; auth_id: string | null }>> {
  const { rows } = await pool.query<{ command_id: string; auth_type: string | null; auth_id: string | null }>(
    'SELECT command_id, auth_type, auth_id FROM command_log',
  );
  return new Map(rows.map((row) => [row.command_id, { auth_type: row.auth_type, auth_id: row.auth_id }]));
}

describe('command log projection in Postgres', () => {
  test('records the Auth Context of each command whatever the order and batching, never replaced by NULL', async ({ database }) => {
    await migrate(database.pool);
    const spec = fc.record({
      auth: fc.constantFrom(...AUTHS),
      results: fc.array(fc.constantFrom('same' as const, 'none' as const), { maxLength: 2 }),
      commandPresent: fc.boolean(),
      at: fc.nat({ max: 2 }),
    });
    await fc.assert(
      fc.asyncProperty(fc.array(spec, { minLength: 1, maxLength: 5 }), batchCuts, async (specs, cuts) => {
        await database.pool.query('TRUNCATE command_log, command_timeline');
        const events = specs.flatMap((one, index) => commandEvents(`cmd-${index}`, one));
        await applyCommandLog(database.pool, splitIntoBatches(events, cuts));
        const stored = await storedAuth(database.pool);
        specs.forEach((one, index) => {
          const projected = one.commandPresent || one.results.length > 0;
          // Results repeat the command's Auth Context or carry none, so the row names the command's principal
          // once the command or any result that repeats it is in, and nothing else.
          const named = one.commandPresent || one.results.includes('same') ? one.auth : undefined;
          expect(stored.get(`cmd-${index}`), `cmd-${index}`).toEqual(
            projected ? { auth_type: named?.type ?? null, auth_id: named?.id ?? null } : undefined,
          );
        });
      }),
      { numRuns: 60 },
    );
  });

  test('a command without Auth Context does not erase the key a result already recorded', async ({ database }) => {
    await migrate(database.pool);
    const key = AUTHS[0];
    // Its results carried the key (they arrived first); the command itself, produced again without it, did not.
    const [accepted, succeeded] = commandEvents('cmd', { auth: key, results: ['same', 'none'], commandPresent: false, at: 0 });
    const [command] = commandEvents('cmd', { auth: undefined, results: [], commandPresent: true, at: 0 });
    await applyCommandLog(database.pool, [[accepted!], [command!], [succeeded!]]);
    expect((await storedAuth(database.pool)).get('cmd')).toEqual({ auth_type: 'api_key', auth_id: key?.id });
    const { rows } = await database.pool.query<{ status: string; input: unknown }>("SELECT status, input FROM command_log WHERE command_id = 'cmd'");
    expect(rows).toEqual([{ status: 'succeeded', input: { owner: 'acme', repo: 'widgets', title: 'cmd' } }]);
  });
});
