import { createHash } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type pg from 'pg';
import { SyncError } from './errors.js';

/** The migrations folder shipped next to dist/ (services/sync-worker/migrations). */
export const MIGRATIONS_DIR = join(import.meta.dirname, '../migrations');

// Any constant works; this one spells "syncmigr" so it is recognisable in pg_locks.
const MIGRATION_LOCK = 0x73796e636d696772n;

export interface MigrationResult {
  applied: string[];
  alreadyApplied: number;
}

interface MigrationFile {
  id: string;
  sql: string;
  checksum: string;
}

async function readMigrations(dir: string): Promise<MigrationFile[]> {
  const files = (await readdir(dir)).filter((name) => /^\d{4}_[a-z0-9_]+\.sql$/.test(name)).sort();
  return Promise.all(
    files.map(async (name) => {
      const sql = await readFile(join(dir, name), 'utf8');
      return { id: name.replace(/\.sql$/, ''), sql, checksum: createHash('sha256').update(sql).digest('hex') };
    }),
  );
}

/**
 * Applies pending migrations in file-name order, each in its own transaction, under a session advisory lock so
 * two workers starting together never race (the second waits, then finds nothing to do). Forward-only: an
 * applied file whose checksum changed stops the start with SYNC_MIGRATION_CHANGED.
 */
export async function migrate(pool: pg.Pool, dir: string = MIGRATIONS_DIR): Promise<MigrationResult> {
  const migrations = await readMigrations(dir);
  const client = await pool.connect();
  try {
    await client.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK.toString()]);
    await client.query(`CREATE TABLE IF NOT EXISTS schema_migrations (
      id text PRIMARY KEY, checksum text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`);
    const { rows } = await client.query<{ id: string; checksum: string }>('SELECT id, checksum FROM schema_migrations');
    const applied = new Map(rows.map((row) => [row.id, row.checksum]));
    const result: MigrationResult = { applied: [], alreadyApplied: 0 };
    for (const migration of migrations) {
      const checksum = applied.get(migration.id);
      if (checksum !== undefined) {
        if (checksum !== migration.checksum) {
          throw new SyncError('SYNC_MIGRATION_CHANGED', `migration ${migration.id} was changed after it was applied`, {
            details: { migration: migration.id },
          });
        }
        result.alreadyApplied += 1;
        continue;
      }
      try {
        await client.query('BEGIN');
        await client.query(migration.sql);
        await client.query('INSERT INTO schema_migrations (id, checksum) VALUES ($1, $2)', [migration.id, migration.checksum]);
        await client.query('COMMIT');
        result.applied.push(migration.id);
      } catch (cause) {
        await client.query('ROLLBACK').catch(() => undefined);
        throw new SyncError('SYNC_MIGRATION_FAILED', `migration ${migration.id} failed: ${(cause as Error).message}`, {
          details: { migration: migration.id },
          cause,
        });
      }
    }
    return result;
  } finally {
    await client.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK.toString()]).catch(() => undefined);
    client.release();
  }
}
