import { topics } from '@switchyard/events';
import { type ServiceProcess } from '@switchyard/testkit';
import { describe, expect } from 'vitest';
import { entityMismatches, readEntities } from './support/db.js';
import { commandResults, EntityLoad, prng, produceInChunks } from './support/load.js';
import { startWorker, test, waitUntilCaughtUp } from './support/worker.js';

const KILLS = 10;
const TOTAL_ENTITY_EVENTS = 21000;
const COMMANDS = 1500;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('crash safety', () => {
  test(
    `SIGKILLed ${KILLS} times under ${TOTAL_ENTITY_EVENTS} events, the tables equal the model: nothing lost, nothing applied twice`,
    { timeout: 240000 },
    async ({ env, topics: t, producer, admin, database }) => {
      const random = prng(20261124);
      const load = new EntityLoad(3000, 42);
      const results = commandResults(COMMANDS, 43, 'cmd');

      // Production is paced to last the whole kill phase (a restart costs about one session timeout, 6 s), so
      // every kill lands while the worker is writing what piled up during its previous downtime.
      let produced = 0;
      const chunk = 300;
      const chunks = TOTAL_ENTITY_EVENTS / chunk;
      const paceMs = (KILLS * 6500) / chunks;
      const production = (async () => {
        const resultChunk = Math.ceil(results.length / chunks);
        let resultAt = 0;
        while (produced < TOTAL_ENTITY_EVENTS) {
          await producer.send(topics.entities, load.next(chunk) as never);
          produced += chunk;
          await produceInChunks(producer, topics.commandResults, results.slice(resultAt, resultAt + resultChunk));
          resultAt += resultChunk;
          await sleep(paceMs);
        }
        await produceInChunks(producer, topics.commandResults, results.slice(resultAt));
      })();

      const restarts: { killedAtEvents: number; restartMs: number; caughtUpMs: number }[] = [];
      let worker: ServiceProcess = await startWorker(env);
      for (let kill = 0; kill < KILLS; kill += 1) {
        // A random moment soon after it is back, while it writes the backlog of its downtime.
        await sleep(random() * 400);
        worker.kill();
        await worker.exited;
        const killedAtEvents = produced;
        const started = Date.now();
        worker = await startWorker(env).catch((error: Error) => {
          console.log(error.message);
          throw error;
        });
        const restartMs = Date.now() - started;
        await waitUntilCaughtUp(database.pool, admin, 'entities', [t.name(topics.entities)], 120000);
        restarts.push({ killedAtEvents, restartMs, caughtUpMs: Date.now() - started });
      }
      await production;
      await waitUntilCaughtUp(database.pool, admin, 'entities', [t.name(topics.entities)], 120000);
      await waitUntilCaughtUp(database.pool, admin, 'command_log', [t.name(topics.commandResults)], 120000);
      console.log(`crash test: ${load.events.length} entity events, ${results.length} command results, ${KILLS} SIGKILLs`);
      console.table(restarts);
      expect(await worker.stop()).toBe(0);

      // Entities: exactly the sequential fold of everything produced.
      const model = load.model();
      const stored = await readEntities(database.pool);
      const mismatches = entityMismatches(model, stored);
      if (mismatches.length > 0) {
        console.log(`${mismatches.length} of ${model.size} rows differ; first ones:`);
        for (const key of mismatches.slice(0, 3)) console.log(JSON.stringify({ key, expected: model.get(key), stored: stored.get(key) }));
      }
      expect(mismatches).toEqual([]);
      expect(stored.size).toBe(model.size);

      // History: one timeline row per (command, status), whatever was redelivered or re-produced.
      const timeline = await database.pool.query<{ rows: string; distinct: string }>(
        "SELECT count(*) AS rows, count(DISTINCT command_id || '/' || status) AS distinct FROM command_timeline",
      );
      expect(timeline.rows[0]).toEqual({ rows: String(COMMANDS * 2), distinct: String(COMMANDS * 2) });
      const statuses = await database.pool.query<{ status: string; n: string }>('SELECT status, count(*) AS n FROM command_log GROUP BY status');
      expect(statuses.rows).toEqual([{ status: 'succeeded', n: String(COMMANDS) }]);
      expect(restarts).toHaveLength(KILLS);
    },
  );
});
