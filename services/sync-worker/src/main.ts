import { serviceAuth } from '@switchyard/auth';
import { createKafka, DeadLetters, EventProducer, KafkaAdmin, TopicNames } from '@switchyard/kafka';
import { bootService } from '@switchyard/service-runtime';
import { buildApp } from './app.js';
import { loadSyncWorkerConfig } from './config.js';
import { RebuildCommands } from './control.js';
import { createPool } from './db.js';
import { InstanceRegistration } from './instances.js';
import { registerLagMetric } from './lag.js';
import { migrate } from './migrate.js';
import { PositionPublisher } from './position-publisher.js';
import { projections } from './projections/index.js';
import { SyncWorker } from './worker.js';

const SERVICE = 'sync-worker';

const { config, logger, lifecycle, registry } = bootService(SERVICE, () => loadSyncWorkerConfig(process.env));
const names = new TopicNames(config.TOPIC_PREFIX);
const kafka = createKafka({ brokers: config.KAFKA_BROKERS, clientId: SERVICE, logger });
const admin = new KafkaAdmin(kafka, names, logger);
const producer = new EventProducer(kafka, names);
const pool = createPool(config.DATABASE_URL, config.DB_POOL_SIZE, { synchronousCommit: config.SYNC_SYNCHRONOUS_COMMIT });
const retry = { initialMs: config.SYNC_RETRY_INITIAL_MS, maxMs: config.SYNC_RETRY_MAX_MS };
const onFatal = (error: Error) => lifecycle.fatal(error, 'consumer stopped');
// The API keys, read from the api-keys topic, that GET /v1/positions checks (admin only).
const auth = serviceAuth({ kafka, names, admin, service: SERVICE, logger, onFatal });
// Committed positions go out on the projection-positions topic through a producer of their own, so that a problem
// with that topic never holds up dead letters (a producer sends what is queued on it in one request).
const positionsProducer = new EventProducer(kafka, names);
const positions = new PositionPublisher({ producer: positionsProducer, logger, registry, retry });

const worker = new SyncWorker({
  kafka,
  admin,
  names,
  pool,
  deadLetters: new DeadLetters(producer, names, { service: SERVICE, group: config.KAFKA_GROUP_ID }),
  positions,
  groupId: config.KAFKA_GROUP_ID,
  logger,
  registry,
  sessionTimeoutMs: config.KAFKA_SESSION_TIMEOUT_MS,
  heartbeatIntervalMs: config.KAFKA_HEARTBEAT_INTERVAL_MS,
  concurrency: config.SYNC_CONCURRENCY,
  maxBytesPerPartition: config.SYNC_MAX_BYTES_PER_PARTITION,
  retry,
  onFatal,
});

const rebuilds = new RebuildCommands({
  kafka,
  names,
  pool,
  producer,
  positions,
  groupId: `${config.KAFKA_GROUP_ID}.rebuild-commands`,
  logger,
  retry,
  swapTimeoutMs: config.SYNC_REBUILD_SWAP_TIMEOUT_MS,
  maxBytesPerPartition: config.SYNC_MAX_BYTES_PER_PARTITION,
  sessionTimeoutMs: config.KAFKA_SESSION_TIMEOUT_MS,
  onFatal,
});

const registration = new InstanceRegistration({
  pool,
  deployment: { prefix: config.TOPIC_PREFIX, groupId: config.KAFKA_GROUP_ID },
  names,
  admin,
  logger,
  onAdopted: (adopted) => {
    for (const position of adopted) worker.countResets(position.projection, 1);
  },
  onLost: (error) => lifecycle.fatal(error, 'another deployment is using this database'),
});

registerLagMetric({ registry, pool, admin, names, projections: Object.values(projections) });

const app = buildApp({
  logger,
  pool,
  registry,
  guard: auth.guard,
  isStopping: () => lifecycle.isStopping,
  checks: [
    ...admin.readinessChecks(producer),
    auth.readiness,
    { name: 'postgres', check: async () => void (await pool.query('SELECT 1')) },
    {
      name: 'consumer',
      check: () => {
        if (!worker.isJoined) throw new Error('not a member of the consumer group yet');
      },
    },
    { name: 'projection', check: () => worker.assertHealthy() },
  ],
});

// A rebuild in progress first: it answers its command (interrupted) and releases the live positions it may hold.
lifecycle.onStop('rebuild-commands', () => rebuilds.stop());
lifecycle.onStop('consumer', () => worker.stop());
// Best effort within the shutdown budget: a position left unpublished is published by whoever takes the partition next.
lifecycle.onStop('positions', async () => {
  await positions.stop(5000);
});
lifecycle.onStop('http', () => app.close());
lifecycle.onStop('api keys', () => auth.stop());
lifecycle.onStop('producer', async () => {
  await Promise.all([producer.disconnect(), positionsProducer.disconnect()]);
});
lifecycle.onStop('admin', () => admin.disconnect());
lifecycle.onStop('instance', () => registration.stop());
lifecycle.onStop('postgres', () => pool.end());

try {
  await app.listen({ port: config.PORT, host: config.HOST });
  const migrations = await migrate(pool);
  logger.info(migrations, 'migrations done');
  await admin.connect();
  await admin.provision();
  // Before consuming: refuses a database another deployment is using, and adopts positions one left behind.
  await registration.start(await admin.clusterId());
  await auth.start();
  await Promise.all([producer.connect(), positionsProducer.connect()]);
  await worker.start();
  await rebuilds.start();
  logger.info({ groupId: config.KAFKA_GROUP_ID }, 'projecting');
} catch (error) {
  lifecycle.fatal(error, 'start failed');
}
