import { env, loadConfig, type Env } from '@switchyard/service-runtime';
import { z } from 'zod';

export const SyncWorkerConfig = z.object({
  PORT: env.port(8081),
  HOST: env.host(),
  LOG_LEVEL: env.logLevel(),
  KAFKA_BROKERS: env.brokers(),
  TOPIC_PREFIX: env.topicPrefix(),
  /** Defaults to `<TOPIC_PREFIX>sync-worker`; every worker of one deployment shares it. */
  KAFKA_GROUP_ID: z.string().min(1).optional(),
  KAFKA_SESSION_TIMEOUT_MS: env.milliseconds(30000),
  KAFKA_HEARTBEAT_INTERVAL_MS: env.milliseconds(3000),
  DATABASE_URL: env.postgresUrl(),
  /** Partition batches projected at once (each in its own transaction). */
  SYNC_CONCURRENCY: env.positiveInt(3),
  /** Upper bound of one partition's fetch, and so of one transaction. */
  SYNC_MAX_BYTES_PER_PARTITION: env.positiveInt(1048576),
  /** `false` lets commits return before the WAL flush; safe here because rows and positions commit together. */
  SYNC_SYNCHRONOUS_COMMIT: env.boolean(false),
  SYNC_RETRY_INITIAL_MS: env.milliseconds(200),
  SYNC_RETRY_MAX_MS: env.milliseconds(5000),
  /**
   * How long a rebuild may take from "caught up with the log" to the swap's commit before it gives up
   * (SYNC_REBUILD_FAILED, naming the partitions whose live position the shadow did not reach).
   */
  SYNC_REBUILD_SWAP_TIMEOUT_MS: env.milliseconds(120000),
  DB_POOL_SIZE: z.coerce.number().int().min(2).optional(),
});

export type SyncWorkerConfig = Omit<z.output<typeof SyncWorkerConfig>, 'KAFKA_GROUP_ID' | 'DB_POOL_SIZE'> & {
  KAFKA_GROUP_ID: string;
  DB_POOL_SIZE: number;
};

export function loadSyncWorkerConfig(environment: Env): SyncWorkerConfig {
  const config = loadConfig(SyncWorkerConfig, environment);
  return {
    ...config,
    KAFKA_GROUP_ID: config.KAFKA_GROUP_ID ?? `${config.TOPIC_PREFIX}sync-worker`,
    // One connection per concurrent batch, plus readiness checks and a rebuild.
    DB_POOL_SIZE: config.DB_POOL_SIZE ?? config.SYNC_CONCURRENCY + 3,
  };
}
