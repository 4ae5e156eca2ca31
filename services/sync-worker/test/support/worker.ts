import { join } from 'node:path';
import { freePort, ServiceProcess, test as infraTest, waitFor } from '@switchyard/testkit';
import type pg from 'pg';
import type { KafkaAdmin } from '@switchyard/kafka';
import { migrate } from '../../src/migrate.js';
import { readOffsets } from '../../src/offsets.js';

const ENTRY = join(import.meta.dirname, '../../dist/main.js');
export const CLI = join(import.meta.dirname, '../../dist/cli.js');

export interface WorkerEnv {
  brokers: string;
  prefix: string;
  databaseUrl: string;
}

/** The infrastructure fixtures plus `env`: this test's brokers, topics and database, its schema migrated. */
export const test = infraTest.extend<{ env: WorkerEnv }>({
  env: async ({ brokers, topics, database }, use) => {
    await migrate(database.pool);
    await use({ brokers, prefix: topics.prefix, databaseUrl: database.url });
  },
});

/**
 * The built sync worker as a child process. A short session timeout so a killed member is noticed quickly. `none`
 * returns at once, for a worker expected to refuse to start.
 */
export async function startWorker(env: WorkerEnv, extra: Record<string, string> = {}, wait: 'ready' | 'live' | 'none' = 'ready') {
  const port = await freePort();
  return ServiceProcess.start({
    name: `sync-worker:${port}`,
    entry: ENTRY,
    url: `http://127.0.0.1:${port}`,
    waitFor: wait,
    readyTimeoutMs: 60000,
    env: {
      KAFKA_BROKERS: env.brokers,
      TOPIC_PREFIX: env.prefix,
      DATABASE_URL: env.databaseUrl,
      PORT: String(port),
      HOST: '127.0.0.1',
      LOG_LEVEL: process.env['SWITCHYARD_TEST_LOG_LEVEL'] ?? 'warn',
      KAFKA_SESSION_TIMEOUT_MS: '6000',
      KAFKA_HEARTBEAT_INTERVAL_MS: '500',
      SYNC_RETRY_INITIAL_MS: '100',
      SYNC_RETRY_MAX_MS: '1000',
      ...extra,
    },
  });
}

/** Resolves once every partition of the given topics has its stored position at the topic's end. */
export async function waitUntilCaughtUp(
  pool: pg.Pool,
  admin: KafkaAdmin,
  projection: string,
  topicNames: readonly string[],
  timeoutMs = 60000,
): Promise<void> {
  const ends = new Map<string, bigint>();
  for (const topic of topicNames) {
    for (const { partition, high } of await admin.partitionOffsets(topic)) ends.set(`${topic}/${partition}`, BigInt(high));
  }
  await waitFor(
    async () => {
      const stored = new Map((await readOffsets(pool, projection)).map((row) => [`${row.topic}/${row.partition}`, row.nextOffset]));
      for (const [key, end] of ends) if (end > 0n && (stored.get(key) ?? 0n) < end) return false;
      return true;
    },
    { timeoutMs, intervalMs: 100, what: `${projection} to reach the end of ${topicNames.join(', ')}` },
  );
}
