import { createEvent, topics, type Envelope } from '@switchyard/events';
import { describe, expect } from 'vitest';
import { readEntities } from './support/db.js';
import { EntityLoad } from './support/load.js';
import { startWorker, test, waitUntilCaughtUp } from './support/worker.js';

describe('poison records', () => {
  test('good events all land, every bad record is dead-lettered with its reason, and the worker never restarts', async ({
    env,
    topics: t,
    producer,
    admin,
    database,
    collect,
  }) => {
    const worker = await startWorker(env);
    try {
      const entities = t.name(topics.entities);
      const [sample, another] = new EntityLoad(40, 7).next(2) as [Envelope, Envelope];
      const withNul = structuredClone(another);
      (withNul.data as { state: { title: string } }).state.title = 'bad \u0000 byte';
      const bad = {
        notJson: '{"specversion":"1.0", oops',
        unknownType: JSON.stringify(createEvent({ type: 'github.repo.upserted', source: 'test', data: {} })),
        badVersion: JSON.stringify({ ...sample, data: { ...(sample.data as object), version: 'yesterday' } }),
        // Valid JSON and valid against the schema, but Postgres' jsonb refuses \u0000.
        nul: JSON.stringify(withNul),
      };
      const model = new EntityLoad(40, 8);
      const good = model.next(600);
      const badRecords = Object.values(bad).map((value, index) => ({ key: `github:issue:acme/widgets#${index + 1}`, value }));
      for (let i = 0; i < good.length; i += 100) {
        await producer.send(topics.entities, good.slice(i, i + 100) as never);
        const poison = badRecords[i / 100];
        if (poison) await producer.sendRaw([{ topic: entities, messages: [{ key: poison.key, value: poison.value, headers: {} }] }]);
      }

      await waitUntilCaughtUp(database.pool, admin, 'entities', [entities]);
      const stored = await readEntities(database.pool);
      const expected = model.model();
      expect(stored.size).toBe(expected.size);
      for (const [key, row] of expected) expect(stored.get(key)).toMatchObject({ version: row.version, deleted: row.deleted, lastEventId: row.lastEventId });

      const letters = await (await collect(topics.deadLetters)).waitForCount(4);
      const byValue = new Map(
        letters.map((record) => {
          if (!record.decoded.ok) throw new Error('dead letter did not decode');
          const { original, error } = record.decoded.event.data;
          return [Buffer.from(original.value ?? '', 'base64').toString('utf8'), { ...error, original }];
        }),
      );
      expect(byValue.get(bad.notJson)).toMatchObject({ code: 'EVT_NOT_JSON', original: { topic: entities } });
      expect(byValue.get(bad.unknownType)).toMatchObject({ code: 'EVT_UNKNOWN_TYPE', field: 'type' });
      expect(byValue.get(bad.badVersion)).toMatchObject({ code: 'EVT_INVALID_DATA', field: 'data.version' });
      expect(byValue.get(bad.nul)).toMatchObject({ code: 'SYNC_UNPROJECTABLE' });
      expect(byValue.get(bad.nul)?.reason).toMatch(/unicode|\\u0000/i);

      const ready = await fetch(`${worker.url}/readyz`);
      expect(ready.status).toBe(200);
      const metrics = await (await fetch(`${worker.url}/metrics`)).text();
      expect(metrics).toMatch(/switchyard_sync_records_dead_lettered_total\{projection="entities",code="SYNC_UNPROJECTABLE"[^}]*\} 1/);
      expect(worker.lines.filter((line) => line.includes('"level":"fatal"'))).toEqual([]);
    } finally {
      expect(await worker.stop()).toBe(0);
    }
  });
});
