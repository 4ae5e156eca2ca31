#!/usr/bin/env node
import { ProjectionName } from '@switchyard/events';
import { createKafka, EventProducer, KafkaAdmin, TopicNames } from '@switchyard/kafka';
import { createLogger, loadConfigOrExit } from '@switchyard/service-runtime';
import { Registry } from 'prom-client';
import { loadSyncWorkerConfig } from './config.js';
import { createPool } from './db.js';
import { InstanceRegistration } from './instances.js';
import { migrate } from './migrate.js';
import { readOffsets } from './offsets.js';
import { PositionPublisher } from './position-publisher.js';
import { projections } from './projections/index.js';
import { rebuildProjection } from './rebuild.js';

const USAGE = `usage: switchyard-sync <command>
  migrate                 apply pending migrations
  rebuild <projection>    rebuild a projection from offset 0 and swap it in (${ProjectionName.options.join(', ')})
  positions               stored positions and lag per partition
Configuration comes from the same environment variables as the sync worker (DATABASE_URL, KAFKA_BROKERS, TOPIC_PREFIX).`;

const [command, argument] = process.argv.slice(2);
if (command === undefined || !['migrate', 'rebuild', 'positions'].includes(command)) {
  console.error(USAGE);
  process.exit(2);
}

const config = loadConfigOrExit('switchyard-sync', () => loadSyncWorkerConfig(process.env));
const logger = createLogger({ service: 'switchyard-sync', level: config.LOG_LEVEL });
const pool = createPool(config.DATABASE_URL, 4);
const names = new TopicNames(config.TOPIC_PREFIX);
const kafka = createKafka({ brokers: config.KAFKA_BROKERS, clientId: 'switchyard-sync-cli', logger });

try {
  if (command === 'migrate') {
    console.log(JSON.stringify(await migrate(pool)));
  } else if (command === 'rebuild') {
    const projection = ProjectionName.safeParse(argument);
    if (!projection.success) {
      console.error(`rebuild: unknown projection "${argument ?? ''}"; one of ${ProjectionName.options.join(', ')}`);
      process.exitCode = 2;
    } else {
      await migrate(pool);
      const retry = { initialMs: config.SYNC_RETRY_INITIAL_MS, maxMs: config.SYNC_RETRY_MAX_MS };
      // Ctrl-C or SIGTERM interrupts the rebuild before its swap: the shadow tables are dropped, the live ones untouched.
      const interrupt = new AbortController();
      for (const signal of ['SIGINT', 'SIGTERM'] as const) {
        process.once(signal, () => interrupt.abort(`switchyard-sync received ${signal}`));
      }
      // Registered like a worker: it writes positions and tables, so it refuses a database another deployment uses.
      const admin = new KafkaAdmin(kafka, names, logger);
      await admin.connect();
      const registration = new InstanceRegistration({
        pool,
        deployment: { prefix: config.TOPIC_PREFIX, groupId: config.KAFKA_GROUP_ID },
        names,
        admin,
        logger,
        onLost: (error) => interrupt.abort(error),
      });
      // The positions after the swap are published as the worker publishes its own (the CLI exposes no metrics).
      const producer = new EventProducer(kafka, names);
      const positions = new PositionPublisher({ producer, logger, registry: new Registry(), retry });
      try {
        await registration.start(await admin.clusterId());
        await producer.connect();
        const report = await rebuildProjection({
          pool,
          kafka,
          names,
          logger,
          projection: projections[projection.data],
          retry,
          swapTimeoutMs: config.SYNC_REBUILD_SWAP_TIMEOUT_MS,
          maxBytesPerPartition: config.SYNC_MAX_BYTES_PER_PARTITION,
          signal: interrupt.signal,
          positions,
          onProgress: ({ events }) => logger.info({ events }, 'rebuilding'),
        });
        console.log(JSON.stringify(report));
      } finally {
        await positions.stop(10000);
        await producer.disconnect();
        await registration.stop();
        await admin.disconnect();
      }
    }
  } else {
    const admin = new KafkaAdmin(kafka, names, logger);
    await admin.connect();
    const rows = [];
    const ends = new Map<string, ReturnType<typeof admin.partitionOffsets>>();
    for (const stored of await readOffsets(pool)) {
      if (!ends.has(stored.topic)) ends.set(stored.topic, admin.partitionOffsets(stored.topic).catch(() => []));
      const partitions = (await ends.get(stored.topic)) ?? [];
      const high = partitions.find((p) => p.partition === stored.partition)?.high;
      rows.push({
        projection: stored.projection,
        topic: stored.topic,
        partition: stored.partition,
        next: stored.nextOffset.toString(),
        lag: high === undefined ? null : (BigInt(high) - stored.nextOffset).toString(),
      });
    }
    await admin.disconnect();
    console.table(rows);
  }
} catch (error) {
  logger.error({ err: error }, `${command} failed`);
  process.exitCode = 1;
} finally {
  await pool.end();
}
