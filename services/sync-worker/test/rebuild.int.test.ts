import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { topics } from '@switchyard/events';
import { waitFor } from '@switchyard/testkit';
import pg from 'pg';
import { describe, expect } from 'vitest';
import { entityMismatches, readEntities } from './support/db.js';
import { EntityLoad } from './support/load.js';
import { rebuildCommand } from './support/rebuild.js';
import { CLI, startWorker, test, waitUntilCaughtUp } from './support/worker.js';

const run = promisify(execFile);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Reads the projection continuously while a rebuild runs; every query must succeed and see a whole table. */
function reader(url: string, minimum: number) {
  const pool = new pg.Pool({ connectionString: url, max: 6 });
  const seen = { queries: 0, errors: [] as string[], smallest: Number.POSITIVE_INFINITY };
  let running = true;
  // Three readers at once, each reading the view and the table it is built on (locks in view → table order).
  const loop = Promise.all([0, 1, 2].map(async () => {
    while (running) {
      try {
        const [entities, issues] = await Promise.all([
          pool.query<{ n: string }>('SELECT count(*) AS n FROM entities'),
          pool.query<{ n: string }>("SELECT count(*) AS n FROM github_issues WHERE state IN ('open', 'closed')"),
        ]);
        seen.queries += 1;
        seen.smallest = Math.min(seen.smallest, Number(entities.rows[0]?.n));
        if (Number(issues.rows[0]?.n) === 0 && minimum > 0) seen.errors.push('github_issues was empty');
      } catch (error) {
        seen.errors.push((error as Error).message);
      }
      await sleep(2);
    }
  }));
  return {
    seen,
    async stop() {
      running = false;
      await loop;
      await pool.end();
      expect(seen.smallest).toBeGreaterThanOrEqual(minimum);
    },
  };
}

describe('projection rebuild', () => {
  test('from the CLI: rebuilds from offset 0 under live load, swaps atomically, readers never fail, nothing is produced', { timeout: 120000 }, async ({
    env,
    topics: t,
    producer,
    admin,
    database,
  }) => {
    const worker = await startWorker(env);
    const load = new EntityLoad(1500, 31);
    try {
      for (let i = 0; i < 20; i += 1) await producer.send(topics.entities, load.next(250) as never);
      await waitUntilCaughtUp(database.pool, admin, 'entities', [t.name(topics.entities)]);

      // A projection bug to repair: rows altered and rows lost.
      await database.pool.query(`UPDATE entities SET state = '{"corrupted": true}' WHERE entity_id IN (SELECT entity_id FROM entities ORDER BY entity_id LIMIT 100)`);
      await database.pool.query('DELETE FROM entities WHERE entity_id IN (SELECT entity_id FROM entities ORDER BY entity_id DESC LIMIT 50)');
      expect(entityMismatches(load.model(), await readEntities(database.pool)).length).toBe(150);
      const before = await admin.partitionOffsets(t.name(topics.deadLetters));

      const readers = reader(database.url, 1000);
      let producing = true;
      const production = (async () => {
        while (producing) {
          await producer.send(topics.entities, load.next(100) as never);
          await sleep(50);
        }
      })();
      const rebuilt = await run(process.execPath, [CLI, 'rebuild', 'entities'], {
        env: { PATH: process.env['PATH'] ?? '', KAFKA_BROKERS: env.brokers, TOPIC_PREFIX: env.prefix, DATABASE_URL: env.databaseUrl, LOG_LEVEL: 'warn' },
      });
      producing = false;
      await production;
      await readers.stop();
      const report = JSON.parse(rebuilt.stdout.trim().split('\n').at(-1) ?? '{}') as { events: number; swapLockMs: number; durationMs: number };
      console.log(
        `rebuild: ${report.events} events folded in ${Math.round(report.durationMs)} ms; live positions held for ${Math.round(report.swapLockMs)} ms; readers ran ${readers.seen.queries} queries, ${readers.seen.errors.length} failed`,
      );
      expect(readers.seen.errors).toEqual([]);
      expect(report.events).toBeGreaterThanOrEqual(5000);

      await waitUntilCaughtUp(database.pool, admin, 'entities', [t.name(topics.entities)]);
      expect(entityMismatches(load.model(), await readEntities(database.pool))).toEqual([]);
      // Views and indexes came along with the swap.
      const view = await database.pool.query<{ n: string }>('SELECT count(*) AS n FROM github_issues');
      expect(Number(view.rows[0]?.n)).toBe([...load.model().values()].filter((row) => !row.deleted).length);
      const indexes = await database.pool.query<{ indexname: string }>("SELECT indexname FROM pg_indexes WHERE tablename = 'entities' ORDER BY 1");
      expect(indexes.rows.map((row) => row.indexname)).toContain('github_issues_updated_at');
      expect(indexes.rows.map((row) => row.indexname)).toContain('entities_pkey');
      const leftovers = await database.pool.query("SELECT tablename FROM pg_tables WHERE tablename LIKE 'entities\\_\\_%'");
      expect(leftovers.rows).toEqual([]);
      // No side effects: nothing new on the dead-letter topic, and the entities topic holds only what we produced.
      expect(await admin.partitionOffsets(t.name(topics.deadLetters))).toEqual(before);
      const entityEnds = await admin.partitionOffsets(t.name(topics.entities));
      expect(entityEnds.reduce((sum, partition) => sum + Number(partition.high), 0)).toBe(load.events.length);
    } finally {
      expect(await worker.stop()).toBe(0);
    }
  });

  test('from a command on the commands topic: accepted then succeeded (naming who asked), and a redelivered command rebuilds nothing', { timeout: 120000 }, async ({
    env,
    topics: t,
    producer,
    admin,
    database,
    collect,
  }) => {
    const worker = await startWorker(env);
    const load = new EntityLoad(300, 41);
    try {
      await producer.send(topics.entities, load.next(1000) as never);
      await waitUntilCaughtUp(database.pool, admin, 'entities', [t.name(topics.entities)]);
      await database.pool.query(`UPDATE entities SET deleted = NOT deleted`);

      const command = rebuildCommand('entities');
      const { id } = command;
      const results = await collect(topics.commandResults);
      await producer.send(topics.commands, [command]);
      const succeeded = await results.waitForEvent((event) => event.data.commandId === id && event.data.status === 'succeeded', { timeoutMs: 60000 });
      expect(succeeded.causationid).toBe(id);
      // Every result names who asked, as the command did.
      const answered = results.events.filter((event) => event.data.commandId === id);
      expect(answered.map((event) => [event.authtype, event.authid])).toEqual([
        ['api_key', 'sy_00000000000000ad'],
        ['api_key', 'sy_00000000000000ad'],
      ]);
      expect(results.events.filter((event) => event.data.commandId === id).map((event) => event.data.status)).toEqual(['accepted', 'succeeded']);
      expect(entityMismatches(load.model(), await readEntities(database.pool))).toEqual([]);

      // The same command again (a redelivery): recognised, not rebuilt a second time.
      await database.pool.query(`UPDATE entities SET deleted = NOT deleted`);
      await producer.send(topics.commands, [command]);
      await waitFor(() => results.events.filter((event) => event.data.commandId === id && event.data.status === 'succeeded').length === 2, {
        timeoutMs: 30000,
        what: 'the redelivered command to be answered',
      });
      const rebuilds = await database.pool.query<{ n: string }>("SELECT count(*) AS n FROM projection_rebuilds WHERE status = 'succeeded'");
      expect(rebuilds.rows[0]?.n).toBe('1');
      expect(entityMismatches(load.model(), await readEntities(database.pool)).length).toBe(load.model().size);
    } finally {
      expect(await worker.stop()).toBe(0);
    }
  });
});
