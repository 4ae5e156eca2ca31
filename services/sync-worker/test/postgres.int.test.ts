import { writeFile, mkdtemp, cp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from '@switchyard/testkit';
import fc from 'fast-check';
import { describe, expect } from 'vitest';
import { migrate, MIGRATIONS_DIR } from '../src/migrate.js';
import { entitiesProjection } from '../src/projections/entities.js';
import { runStatements } from '../src/projections/index.js';
import { envelopeOf, readEntities } from './support/db.js';
import { batchCuts, changeSequences, foldModel, splitIntoBatches } from './support/model.js';

describe('migrations', () => {
  test('apply once even when two workers start together, and refuse an edited migration', async ({ database }) => {
    const [a, b] = await Promise.all([migrate(database.pool), migrate(database.pool)]);
    expect([...a.applied, ...b.applied].sort()).toEqual(
      ['0001_offsets_and_entities', '0002_command_log_and_health', '0003_typed_views', '0004_projection_rebuilds', '0005_offsets_cluster'],
    );
    expect(a.alreadyApplied + b.alreadyApplied).toBe(5);

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
          expect({ version: row?.version, deleted: row?.deleted, state: row?.state, lastEventId: row?.lastEventId }).toEqual(expected);
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
        entitiesProjection.statements([change(1, 1, 0, false, 'a'), change(2, 1, 0, false, 'b'), change(2, 2, 0, true, 'c', false)].map((c) => ({
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
      "SELECT repository, number, state, labels, updated_at FROM github_issues WHERE repository = 'acme/widgets' AND state = 'open'",
    );
    expect(rows).toEqual([{ repository: 'acme/widgets', number: 1, state: 'open', labels: ['bug'], updated_at: new Date('2026-11-24T05:00:00Z') }]);
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
