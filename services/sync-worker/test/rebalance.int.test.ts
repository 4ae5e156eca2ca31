import { topics } from '@switchyard/events';
import { type ServiceProcess } from '@switchyard/testkit';
import { describe, expect } from 'vitest';
import { entityMismatches, readEntities } from './support/db.js';
import { commandResults, EntityLoad, produceInChunks } from './support/load.js';
import { startWorker, test, waitUntilCaughtUp } from './support/worker.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function projectedBy(worker: ServiceProcess): Promise<number> {
  const text = await fetch(`${worker.url}/metrics`).then((response) => response.text());
  return [...text.matchAll(/switchyard_sync_events_projected_total\{[^}]*\} (\d+)/g)].reduce((sum, match) => sum + Number(match[1]), 0);
}

describe('scale-out', () => {
  test('workers going 1 → 3 → 1 under load split the partitions and lose or repeat nothing', { timeout: 120000 }, async ({
    env,
    topics: t,
    producer,
    admin,
    database,
  }) => {
    const load = new EntityLoad(2000, 21);
    const results = commandResults(600, 22, 'scale');
    let producing = true;
    const production = (async () => {
      let at = 0;
      while (producing) {
        await producer.send(topics.entities, load.next(250) as never);
        await produceInChunks(producer, topics.commandResults, results.slice(at, at + 20));
        at += 20;
        await sleep(100);
      }
      await produceInChunks(producer, topics.commandResults, results.slice(at));
    })();

    const first = await startWorker(env);
    const more: ServiceProcess[] = [];
    try {
      await sleep(2000);
      more.push(...(await Promise.all([startWorker(env), startWorker(env)])));
      await sleep(5000); // three members share the partitions under load
      const shares = await Promise.all([first, ...more].map(projectedBy));
      // Back to one: the two newer members leave gracefully, mid-load.
      const codes = await Promise.all(more.map((worker) => worker.stop()));
      expect(codes).toEqual([0, 0]);
      await sleep(3000);
      producing = false;
      await production;
      await waitUntilCaughtUp(database.pool, admin, 'entities', [t.name(topics.entities)]);
      await waitUntilCaughtUp(database.pool, admin, 'command_log', [t.name(topics.commandResults)]);
      console.log(`scale-out: ${load.events.length} entity events; events projected per member while three ran: ${shares.join(', ')}`);
      // Each member of the group of three got partitions and wrote.
      expect(shares.filter((count) => count > 0)).toHaveLength(3);

      const model = load.model();
      const rows = await readEntities(database.pool);
      expect(rows.size).toBe(model.size);
      expect(entityMismatches(model, rows)).toEqual([]);
      const timeline = await database.pool.query<{ n: string }>('SELECT count(*) AS n FROM command_timeline');
      expect(timeline.rows[0]?.n).toBe(String(600 * 2));
    } finally {
      producing = false;
      await production;
      for (const worker of more) await worker.stop();
      expect(await first.stop()).toBe(0);
    }
  });
});
