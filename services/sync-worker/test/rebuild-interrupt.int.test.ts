import { topics } from '@switchyard/events';
import { waitFor } from '@switchyard/testkit';
import { describe, expect } from 'vitest';
import { entityMismatches, readEntities } from './support/db.js';
import { EntityLoad } from './support/load.js';
import { rebuildCommand, rebuildRows, shadowTables } from './support/rebuild.js';
import { startWorker, test, waitUntilCaughtUp } from './support/worker.js';

/** The service runtime's shutdown budget: past it the process exits 1 whatever it was doing. */
const SHUTDOWN_BUDGET_MS = 25000;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('a rebuild interrupted by SIGTERM', () => {
  test(
    'the worker exits 0 well within the shutdown budget, the command is answered interrupted before its offset is committed, no shadow table is left, and the next start is clean',
    { timeout: 240000 },
    async ({ env, kafka, topics: t, producer, admin, database, collect }) => {
      const entities = t.name(topics.entities);
      const load = new EntityLoad(2000, 71);
      // Many small producer batches, and a fetch of one record batch per partition: the rebuild folds them one small
      // transaction at a time and is still running many seconds after it started.
      for (let i = 0; i < 400; i += 1) await producer.send(topics.entities, load.next(40) as never);

      const slow = { LOG_LEVEL: 'info', SYNC_MAX_BYTES_PER_PARTITION: '1' };
      const first = await startWorker(env, slow);
      const results = await collect(topics.commandResults);
      const command = rebuildCommand('entities');
      const [sent] = await producer.send(topics.commands, [command]);
      const answers = () => results.events.filter((event) => event.data.commandId === command.id);
      await results.waitForEvent((event) => event.data.commandId === command.id && event.data.status === 'accepted', { timeoutMs: 60000 });
      // Mid-flight: it has reported progress, folded some events, and is far from done.
      await waitFor(() => first.logs().some((line) => line['msg'] === 'rebuild progress' && Number(line['events']) > 0), {
        timeoutMs: 30000,
        what: 'the rebuild to report progress',
      });
      expect(first.logs().some((line) => line['msg'] === 'rebuild caught up with the log; swapping')).toBe(false);
      expect(await shadowTables(database.pool)).toEqual(['entities__rebuild']);

      const signalled = performance.now();
      const code = await first.stop(SHUTDOWN_BUDGET_MS + 5000);
      const exitMs = performance.now() - signalled;
      const steps = first.logs().filter((line) => line['msg'] === 'stopped').map((line) => `${String(line['step'])} ${String(line['ms'])} ms`);
      console.log(`interrupted rebuild: SIGTERM to exit ${Math.round(exitMs)} ms (${steps.join(', ')})`);
      expect(code).toBe(0);
      expect(exitMs).toBeLessThan(10000);
      expect(first.logs().some((line) => line['msg'] === 'shutdown timed out; exiting')).toBe(false);

      // Answered before the command's offset was committed past it.
      await waitFor(() => answers().length === 2, { timeoutMs: 10000, what: 'the interrupted command to be answered' });
      const [accepted, failed] = answers();
      expect([accepted?.data.status, failed?.data.status]).toEqual(['accepted', 'failed']);
      expect(failed?.data.error).toMatchObject({ code: 'SYNC_REBUILD_INTERRUPTED', retriable: true });
      expect(failed?.data.error?.message).toMatch(/interrupted before the swap: the sync worker is shutting down/);
      const group = kafka.admin();
      await group.connect();
      try {
        const [offsets] = await group.fetchOffsets({ groupId: `${env.prefix}sync-worker.rebuild-commands`, topics: [t.name(topics.commands)] });
        const committed = offsets?.partitions.find((partition) => partition.partition === sent?.partition)?.offset;
        expect(committed).toBe((BigInt(sent?.offset ?? '-2') + 1n).toString());
      } finally {
        await group.disconnect();
      }

      expect(await shadowTables(database.pool)).toEqual([]);
      expect(await rebuildRows(database.pool)).toEqual([
        {
          command_id: command.id,
          status: 'failed',
          error: expect.stringMatching(/^rebuild of entities interrupted before the swap: the sync worker is shutting down/) as string,
          error_code: 'SYNC_REBUILD_INTERRUPTED',
        },
      ]);

      // The next start on the same database: ready, no rebuild restarted, new events projected, the live table whole.
      const second = await startWorker(env, { LOG_LEVEL: 'info' });
      try {
        await waitFor(
          () => second.logs().some((line) => line['msg'] === 'joined consumer group' && line['groupId'] === `${env.prefix}sync-worker.rebuild-commands`),
          { timeoutMs: 30000, what: 'the rebuild-command consumer to join its group' },
        );
        await producer.send(topics.entities, load.next(300) as never);
        await waitUntilCaughtUp(database.pool, admin, 'entities', [entities], 120000);
        expect(entityMismatches(load.model(), await readEntities(database.pool))).toEqual([]);
        await sleep(2000);
        expect(second.logs().filter((line) => String(line['msg']).startsWith('rebuild'))).toEqual([]);
        expect(answers()).toHaveLength(2);
        expect(await rebuildRows(database.pool)).toHaveLength(1);

        // What the answer says to do: send it again. The same partition, after the interrupted one, so it is
        // answered only once the consumer is past the first — which it reads again only if its offset was lost.
        const again = rebuildCommand('entities');
        const [resent] = await producer.send(topics.commands, [again]);
        expect(resent?.partition).toBe(sent?.partition);
        await results.waitForEvent((event) => event.data.commandId === again.id && event.data.status === 'succeeded', { timeoutMs: 120000 });
        expect(answers()).toHaveLength(2);
        expect((await rebuildRows(database.pool)).map((row) => [row.command_id, row.status])).toEqual([
          [command.id, 'failed'],
          [again.id, 'succeeded'],
        ]);
        await waitUntilCaughtUp(database.pool, admin, 'entities', [entities]);
        expect(entityMismatches(load.model(), await readEntities(database.pool))).toEqual([]);
        expect(await shadowTables(database.pool)).toEqual([]);
      } finally {
        expect(await second.stop()).toBe(0);
      }
    },
  );
});
