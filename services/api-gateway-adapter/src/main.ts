import { topics } from '@switchyard/events';
import { createKafka, DeadLetters, EventConsumer, EventProducer, KafkaAdmin, TopicNames } from '@switchyard/kafka';
import { bootService } from '@switchyard/service-runtime';
import { buildApp } from './app.js';
import { loadApiGatewayAdapterConfig } from './config.js';
import { CommandExecutor } from './executor.js';
import { GithubConnection } from './github/connection.js';
import { CommandIntake } from './intake.js';
import { createAdapterMetrics } from './metrics.js';
import { CommandProcessor } from './processor.js';

const SERVICE = 'api-gateway-adapter';

const { config, logger, lifecycle, registry } = bootService(SERVICE, () => loadApiGatewayAdapterConfig(process.env));
const metrics = createAdapterMetrics(registry);
const names = new TopicNames(config.TOPIC_PREFIX);
const kafka = createKafka({ brokers: config.KAFKA_BROKERS, clientId: SERVICE, logger });
const admin = new KafkaAdmin(kafka, names, logger);
const producer = new EventProducer(kafka, names);
const deadLetters = new DeadLetters(producer, names, { service: SERVICE, group: config.KAFKA_GROUP_ID });

const github = new GithubConnection({
  name: 'github',
  baseUrl: config.GITHUB_API_URL,
  token: config.GITHUB_TOKEN,
  maxConnections: config.GITHUB_MAX_CONNECTIONS,
  maxAttempts: config.COMMAND_MAX_ATTEMPTS,
  attemptTimeoutMs: config.COMMAND_ATTEMPT_TIMEOUT_MS,
  retryBaseDelayMs: config.COMMAND_RETRY_BASE_DELAY_MS,
  retryMaxDelayMs: config.COMMAND_RETRY_MAX_DELAY_MS,
  circuitFailureThreshold: config.CIRCUIT_FAILURE_THRESHOLD,
  circuitHalfOpenAfterMs: config.CIRCUIT_HALF_OPEN_AFTER_MS,
  metrics,
});
const executor = new CommandExecutor([github]);

const processor = new CommandProcessor({ producer, deadLetters, executor, maxAgeMs: config.COMMAND_MAX_AGE_MS, logger, metrics });
const consumer = new EventConsumer(kafka, names, {
  groupId: config.KAFKA_GROUP_ID,
  topics: [topics.commands],
  fromBeginning: true,
  commitToKafka: true,
  sessionTimeoutMs: config.KAFKA_SESSION_TIMEOUT_MS,
  partitionsConsumedConcurrently: config.KAFKA_PARTITIONS_CONCURRENTLY,
  logger,
  onFatal: (error) => lifecycle.fatal(error, 'command consumer stopped'),
});

const intake = new CommandIntake({
  producer,
  connections: executor.connectionNames(),
  produceTimeoutMs: config.COMMAND_PRODUCE_TIMEOUT_MS,
  metrics,
});
const app = buildApp({
  logger,
  intake,
  registry,
  isStopping: () => lifecycle.isStopping,
  checks: [
    ...admin.readinessChecks(producer),
    {
      name: 'consumer',
      check: () => {
        if (!consumer.isJoined) throw new Error(`not a member of consumer group ${config.KAFKA_GROUP_ID}`);
      },
    },
  ],
});

// Stop taking commands from Kafka (the batch in hand finishes), flush results, stop HTTP, then the API pools.
lifecycle.onStop('consumer', () => consumer.stop());
lifecycle.onStop('producer', () => producer.disconnect());
lifecycle.onStop('http', () => app.close());
lifecycle.onStop('upstream', () => executor.close());
lifecycle.onStop('admin', () => admin.disconnect());

try {
  await app.listen({ port: config.PORT, host: config.HOST });
  await admin.connect();
  await admin.provision();
  await producer.connect();
  await consumer.start(processor.handleBatch);
  logger.info({ groupId: config.KAFKA_GROUP_ID, connections: executor.connectionNames() }, 'consuming commands');
} catch (error) {
  lifecycle.fatal(error, 'start failed');
}
