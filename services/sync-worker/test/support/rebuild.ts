import { createEvent, newId, type ProjectionName } from '@switchyard/events';
import type pg from 'pg';

/** A `switchyard.projection.rebuild` command, as the adapter would put it on the commands topic. */
export function rebuildCommand(projection: ProjectionName = 'entities') {
  const id = newId();
  return createEvent({
    type: 'switchyard.projection.rebuild',
    id,
    source: 'test',
    subject: `switchyard:projection:${projection}`,
    auth: { type: 'api_key', id: 'sy_00000000000000ad' },
    data: { connection: 'switchyard', idempotencyKey: id, input: { projection } },
  });
}

/** Shadow tables left in the database (`<table>__rebuild`). */
export async function shadowTables(pool: pg.Pool): Promise<string[]> {
  const { rows } = await pool.query<{ tablename: string }>("SELECT tablename FROM pg_tables WHERE tablename LIKE '%\\_\\_rebuild' ORDER BY 1");
  return rows.map((row) => row.tablename);
}

export interface RebuildRow {
  command_id: string | null;
  status: string;
  error: string | null;
  error_code: string | null;
}

export async function rebuildRows(pool: pg.Pool): Promise<RebuildRow[]> {
  const { rows } = await pool.query<RebuildRow>('SELECT command_id, status, error, error_code FROM projection_rebuilds ORDER BY id');
  return rows;
}
