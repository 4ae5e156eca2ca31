import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import { CommandBudget, KeyManager, serviceAuth, type ServiceAuth } from '@switchyard/auth';
import { Connection } from '@switchyard/connectors';
import { topics } from '@switchyard/events';
import { createKafka, DeadLetters, EventConsumer, EventProducer, KafkaAdmin, TopicNames, type KafkaError } from '@switchyard/kafka';
import type { FastifyInstance, Lifecycle, Logger, Registry } from '@switchyard/service-runtime';
import { buildApp } from './app.js';
import type { ApiGatewayAdapterConfig } from './config.js';
import { CommandIntake } from './intake.js';
import { createAdapterMetrics, type AdapterMetrics } from './metrics.js';
import { CommandProcessor } from './processor.js';
import { CommandsView } from './view.js';

export const SERVICE = 'api-gateway-adapter';
const SOURCE_KEYS = 'switchyard/api-gateway-adapter/keys';

export interface AdapterRuntime {
  readonly logger: Logger;
  readonly registry: Registry;
  /** Where shutdown steps are registered, in order; its `fatal` stops the process. */
  readonly lifecycle: Pick<Lifecycle, 'onStop' | 'fatal' | 'isStopping'>;
  /**
   * Replaces the key check on HTTP requests. Only the auth benchmark sets it, to measure what the check costs;
   * main.ts never does and no configuration can.
   */
  readonly guardForBenchmark?: (app: FastifyInstance) => void;
}

export interface Adapter {
  readonly app: FastifyInstance;
  readonly metrics: AdapterMetrics;
  readonly view: CommandsView;
  readonly auth: ServiceAuth;
  /** Listens, provisions topics, reads the command view up to now, then takes commands from Kafka. */
  start(): Promise<void>;
}

/**
 * Everything the adapter is, wired from its config: main.ts and the tests run exactly this. Shutdown steps are
 * registered on the lifecycle: stop taking commands from Kafka (the batch in hand finishes), stop HTTP, stop the
 * view (and delete its group), flush the producer, close the provider pools.
 */
export function createAdapter(config: ApiGatewayAdapterConfig, runtime: AdapterRuntime): Adapter {
  const { logger, registry, lifecycle } = runtime;
  const metrics = createAdapterMetrics(registry);
  const names = new TopicNames(config.TOPIC_PREFIX);
  const kafka = createKafka({ brokers: config.KAFKA_BROKERS, clientId: SERVICE, logger });
  const admin = new KafkaAdmin(kafka, names, logger);
  const producer = new EventProducer(kafka, names);
  const deadLetters = new DeadLetters(producer, names, { service: SERVICE, group: config.KAFKA_GROUP_ID });
  const onFatal = (error: KafkaError) => lifecycle.fatal(error, 'consumer stopped');
  const auth = serviceAuth({ kafka, names, admin, service: SERVICE, logger, onFatal });
  const keys = new KeyManager({ producer, store: auth.store, source: SOURCE_KEYS });
  const budget = new CommandBudget({ commandsPerSecond: config.COMMAND_RATE_PER_SECOND, burst: config.COMMAND_RATE_BURST });

  const connections = new Map(
    config.connections.map((settings) => [
      settings.name,
      new Connection({
        name: settings.name,
        connector: settings.connector,
        settings,
        policy: {
          maxAttempts: config.COMMAND_MAX_ATTEMPTS,
          attemptTimeoutMs: config.COMMAND_ATTEMPT_TIMEOUT_MS,
          retryBaseDelayMs: config.COMMAND_RETRY_BASE_DELAY_MS,
          retryMaxDelayMs: config.COMMAND_RETRY_MAX_DELAY_MS,
          circuitFailureThreshold: config.CIRCUIT_FAILURE_THRESHOLD,
          circuitHalfOpenAfterMs: config.CIRCUIT_HALF_OPEN_AFTER_MS,
          maxConnections: settings.maxConnections ?? config.CONNECTION_MAX_CONNECTIONS,
          maxConcurrency: settings.maxConcurrency ?? config.CONNECTION_MAX_CONCURRENCY,
          lookupIntervalMs: config.COMMAND_LOOKUP_INTERVAL_MS,
        },
        metrics,
        userAgent: `switchyard-${SERVICE}`,
      }),
    ]),
  );

  const view = new CommandsView({
    kafka,
    names,
    admin,
    logger,
    registry,
    windowMs: config.IDEMPOTENCY_WINDOW_MS,
    onFatal,
    groupId: `${config.KAFKA_GROUP_ID}.view.${hostname()}-${process.pid}-${randomBytes(4).toString('hex')}`,
  });
  const processor = new CommandProcessor({
    producer,
    deadLetters,
    view,
    connections,
    maxAgeMs: config.COMMAND_MAX_AGE_MS,
    deadlineMs: config.COMMAND_DEADLINE_MS,
    concurrency: config.COMMAND_CONCURRENCY,
    logger,
    metrics,
  });
  const consumer = new EventConsumer(kafka, names, {
    groupId: config.KAFKA_GROUP_ID,
    topics: [topics.commands],
    fromBeginning: true,
    commitToKafka: true,
    sessionTimeoutMs: config.KAFKA_SESSION_TIMEOUT_MS,
    partitionsConsumedConcurrently: config.KAFKA_PARTITIONS_CONCURRENTLY,
    logger,
    onFatal,
  });
  consumer.onAssignment(processor.onAssignment);
  const intake = new CommandIntake({
    producer,
    view,
    connections: new Map(config.connections.map((connection) => [connection.name, connection.connector.provider])),
    produceTimeoutMs: config.COMMAND_PRODUCE_TIMEOUT_MS,
    metrics,
  });
  const app = buildApp({
    logger,
    intake,
    view,
    names,
    registry,
    budget,
    keys,
    keyStore: auth.store,
    guard: runtime.guardForBenchmark ?? auth.guard,
    isStopping: () => lifecycle.isStopping,
    checks: [
      ...admin.readinessChecks(producer),
      auth.readiness,
      { name: 'command view', check: () => view.check() },
      {
        name: 'consumer',
        check: () => {
          if (!consumer.isJoined) throw new Error(`not a member of consumer group ${config.KAFKA_GROUP_ID}`);
        },
      },
    ],
  });

  lifecycle.onStop('consumer', () => consumer.stop());
  lifecycle.onStop('http', () => app.close());
  lifecycle.onStop('command view', async () => {
    await view.stop();
    await view.deleteGroup();
  });
  lifecycle.onStop('api keys', () => auth.stop());
  lifecycle.onStop('producer', () => producer.disconnect());
  lifecycle.onStop('upstream', async () => {
    await Promise.all([...connections.values()].map((connection) => connection.close()));
  });
  lifecycle.onStop('admin', () => admin.disconnect());

  return {
    app,
    metrics,
    view,
    auth,
    async start() {
      await app.listen({ port: config.PORT, host: config.HOST });
      await admin.connect();
      await admin.provision();
      await producer.connect();
      await auth.start();
      await auth.store.loaded;
      await view.start();
      await consumer.start(processor.handleBatch);
      if (connections.size === 0) logger.warn('no connection is configured (set GITHUB_TOKEN, or CONNECTIONS): every provider command is rejected');
      logger.info({ groupId: config.KAFKA_GROUP_ID, connections: [...connections.keys()] }, 'consuming commands');
    },
  };
}
