import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { topicName, topics } from '@switchyard/events';
import { waitFor } from '@switchyard/testkit';
import { describe, expect } from 'vitest';
import { INSTANCE_LEASE_MS } from '../src/instances.js';
import { readOffsets } from '../src/offsets.js';
import { entityMismatches, readEntities } from './support/db.js';
import { EntityLoad } from './support/load.js';
import { CLI, startWorker, test } from './support/worker.js';

const run = promisify(execFile);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

interface OtherDeployment {
  readonly what: string;
  /** The other deployment's Kafka cluster and topic prefix, given this test's. */
  readonly of: (cluster: string, prefix: string) => { cluster: string; prefix: string };
  /** How its row goes away: it lapses (the process died), or it is removed (it stopped). */
  readonly gone: 'lapses' | 'is removed';
  /** What becomes of the positions it wrote. */
  readonly positions: string;
}

describe('two deployments, one database', () => {
  test.for<OtherDeployment>([
    {
      what: 'another Kafka cluster',
      of: (_cluster, prefix) => ({ cluster: 'kafka-cluster-of-staging', prefix }),
      gone: 'lapses',
      positions: "its positions on this deployment's topics are adopted at start and this log replayed",
    },
    {
      what: 'another topic prefix',
      of: (cluster) => ({ cluster, prefix: 'staging.' }),
      gone: 'is removed',
      positions: 'its positions on its own topics are left alone',
    },
  ])(
    "a live worker of $what: the worker and switchyard-sync rebuild refuse with SYNC_DATABASE_IN_USE, exit 1, naming it; once its row $gone the worker starts and projects this cluster's events; $positions",
    { timeout: 180000 },
    async ({ of, gone }, { env, topics: t, producer, admin, database }) => {
      const entities = t.name(topics.entities);
      const cluster = await admin.clusterId();
      const other = of(cluster, env.prefix);
      const load = new EntityLoad(300, 111);
      await producer.send(topics.entities, load.next(900) as never);
      const ends = await admin.partitionOffsets(entities);

      // The other deployment's worker, seen a moment ago, and the positions it wrote: in its own cluster, they claim
      // as much of the log as this cluster's log holds, so read by offset alone they would skip all of it.
      await database.pool.query(
        `INSERT INTO sync_instances (instance_id, kafka_cluster, topic_prefix, group_id, host, pid, started_at, seen_at)
         VALUES ('staging-worker', $1, $2, $3, 'staging-host-1', 4242, now() - interval '1 hour', now())`,
        [other.cluster, other.prefix, `${other.prefix}sync-worker`],
      );
      const otherTopic = topicName(topics.entities, other.prefix);
      for (const end of ends) {
        await database.pool.query(
          "INSERT INTO sync_offsets (projection, topic, partition, next_offset, kafka_cluster) VALUES ('entities', $1, $2, $3, $4)",
          [otherTopic, end.partition, end.high, other.cluster],
        );
      }

      const refused = await startWorker(env, {}, 'none');
      const exited = await Promise.race([refused.exited, sleep(30000).then(() => 'still running after 30 s')]);
      refused.kill();
      expect(exited).toBe(1);
      const fatal = refused.logs().find((line) => line['level'] === 'fatal');
      const refusal = (fatal?.['err'] as { code?: string; message?: string } | undefined) ?? {};
      expect(refusal.code).toBe('SYNC_DATABASE_IN_USE');
      for (const named of [`Kafka cluster ${other.cluster}`, `topic prefix "${other.prefix}"`, 'staging-host-1', 'pid 4242', 'DATABASE_URL', 'stop the other']) {
        expect(refusal.message).toContain(named);
      }
      expect(refusal.message).toMatch(/^database "sy_t_\w+" is in use by another deployment/);
      // Inserted a moment ago, so seen well within the lease.
      expect(Number(/was seen (\d+) s ago/.exec(refusal.message ?? '')?.[1])).toBeLessThan(INSTANCE_LEASE_MS / 1000 / 2);

      // switchyard-sync rebuild writes positions and tables too: it refuses the same way.
      const cli = await run(process.execPath, [CLI, 'rebuild', 'entities'], {
        env: { PATH: process.env['PATH'] ?? '', KAFKA_BROKERS: env.brokers, TOPIC_PREFIX: env.prefix, DATABASE_URL: env.databaseUrl, LOG_LEVEL: 'warn' },
      }).then(
        () => ({ code: 0, output: '' }),
        (error: { code: number; stdout: string; stderr: string }) => ({ code: error.code, output: error.stdout + error.stderr }),
      );
      expect(cli.code).toBe(1);
      expect(cli.output).toContain('SYNC_DATABASE_IN_USE');
      expect(cli.output).toContain('staging-host-1');
      const { rows: registered } = await database.pool.query<{ instance_id: string }>('SELECT instance_id FROM sync_instances');
      expect(registered.map((row) => row.instance_id)).toEqual(['staging-worker']);

      if (gone === 'lapses') {
        await database.pool.query(`UPDATE sync_instances SET seen_at = now() - $1 * interval '1 millisecond'`, [INSTANCE_LEASE_MS + 1000]);
      } else {
        await database.pool.query('DELETE FROM sync_instances');
      }
      const worker = await startWorker(env, { LOG_LEVEL: 'info' });
      try {
        await waitFor(async () => entityMismatches(load.model(), await readEntities(database.pool)).length === 0, {
          timeoutMs: 60000,
          what: "this cluster's events in the projection",
        });
        const { rows: running } = await database.pool.query<{ kafka_cluster: string; topic_prefix: string }>('SELECT kafka_cluster, topic_prefix FROM sync_instances');
        expect(running).toEqual([{ kafka_cluster: cluster, topic_prefix: env.prefix }]);

        const positions = await readOffsets(database.pool, 'entities');
        const adoption = worker.logs().find((line) => String(line['msg']).startsWith('sync_offsets held'));
        const resetByBatch = worker.logs().filter((line) => line['msg'] === 'stored position was read from another Kafka cluster; reading this log from its start');
        if (other.prefix === env.prefix) {
          // Its positions counted on this deployment's topics in another cluster: adopted at start, before any batch.
          expect(adoption?.['adopted']).toBe(ends.length);
          expect(adoption?.['fromClusters']).toEqual([other.cluster]);
          expect(resetByBatch).toEqual([]);
          const mine = await database.pool.query<{ n: string }>(
            "SELECT count(*) AS n FROM sync_offsets WHERE projection = 'entities' AND topic = $1 AND kafka_cluster = $2",
            [entities, cluster],
          );
          expect(Number(mine.rows[0]?.n)).toBe(ends.length);
        } else {
          // Its positions are on its own topics, which this deployment never reads: left as they are.
          expect(adoption).toBeUndefined();
          expect(positions.filter((row) => row.topic === otherTopic).map((row) => row.nextOffset.toString()).sort()).toEqual(ends.map((end) => end.high).sort());
        }
      } finally {
        expect(await worker.stop()).toBe(0);
      }
      // A clean stop removes the row.
      const { rows: after } = await database.pool.query('SELECT instance_id FROM sync_instances');
      expect(after).toEqual([]);
    },
  );
});
