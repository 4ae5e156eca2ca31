import { topics } from '@switchyard/events';
import { waitFor } from '@switchyard/testkit';
import { describe, expect } from 'vitest';
import { entityMismatches, readEntities } from './support/db.js';
import { EntityLoad } from './support/load.js';
import { TcpProxy } from './support/proxy.js';
import { startWorker, test, waitUntilCaughtUp } from './support/worker.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('Postgres outage', () => {
  test('the worker pauses while Postgres is unreachable, reports degraded within 5 s, then recovers with nothing lost', { timeout: 120000 }, async ({
    env,
    topics: t,
    producer,
    admin,
    database,
    collect,
  }) => {
    const target = new URL(database.url);
    const proxy = await TcpProxy.start(target.hostname, Number(target.port || 5432));
    const viaProxy = new URL(database.url);
    viaProxy.host = `127.0.0.1:${proxy.port}`;
    const worker = await startWorker({ ...env, databaseUrl: viaProxy.toString() });
    const load = new EntityLoad(1500, 11);
    let producing = true;
    const production = (async () => {
      while (producing) {
        await producer.send(topics.entities, load.next(200) as never);
        await sleep(100);
      }
    })();
    try {
      await sleep(2000);
      proxy.cut();
      const cutAt = Date.now();
      const degraded = await waitFor(
        async () => {
          const response = await fetch(`${worker.url}/readyz`);
          return response.status === 503 ? ((await response.json()) as { checks: Record<string, { ok: boolean; reason?: string }> }) : undefined;
        },
        { timeoutMs: 10000, intervalMs: 100, what: '/readyz to report the outage' },
      );
      const detectedMs = Date.now() - cutAt;
      expect(detectedMs).toBeLessThan(5000);
      expect(degraded.checks['postgres']?.ok).toBe(false);

      await sleep(6000); // the outage lasts a while, under load
      const stored = await fetch(`${worker.url}/metrics`).then((response) => response.text());
      const retries = Number(/switchyard_sync_transient_failures_total\{projection="entities"[^}]*\} (\d+)/.exec(stored)?.[1] ?? 0);
      proxy.restore();
      const restoredAt = Date.now();
      await waitFor(async () => (await fetch(`${worker.url}/readyz`)).ok, { timeoutMs: 20000, what: '/readyz to recover' });
      const recoveredMs = Date.now() - restoredAt;
      producing = false;
      await production;
      await waitUntilCaughtUp(database.pool, admin, 'entities', [t.name(topics.entities)]);
      console.log(`outage: degraded reported after ${detectedMs} ms; ${retries} backed-off retries in ~6 s; ready again ${recoveredMs} ms after Postgres returned`);

      // Backoff, not a hot loop: at most a few retries per partition per second.
      expect(retries).toBeGreaterThan(0);
      expect(retries).toBeLessThan(6 * 3 * 8);
      const model = load.model();
      const rows = await readEntities(database.pool);
      expect(rows.size).toBe(model.size);
      expect(entityMismatches(model, rows)).toEqual([]);
      // Nothing was skipped to the dead-letter topic, and the process never restarted.
      const offsets = await admin.partitionOffsets(t.name(topics.deadLetters));
      expect(offsets.every((partition) => partition.high === '0')).toBe(true);
      expect(worker.lines.filter((line) => line.includes('"level":"fatal"'))).toEqual([]);
      expect(collect).toBeDefined();
    } finally {
      producing = false;
      await production;
      const code = await worker.stop();
      if (code !== 0) console.log(worker.tail(40));
      expect(code).toBe(0);
      await proxy.close();
    }
  });
});
