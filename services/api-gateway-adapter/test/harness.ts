import { topics as catalog, type CommandType } from '@switchyard/events';
import { DeadLetters, EventConsumer, type EventProducer, type Kafka } from '@switchyard/kafka';
import { createLogger, createMetricsRegistry, type Registry } from '@switchyard/service-runtime';
import { createGithubSimulator, type GithubSimulator } from '@switchyard/simulators';
import { testLogger, uniqueName, waitFor, type TestTopics } from '@switchyard/testkit';
import { buildApp } from '../src/app.js';
import { CommandExecutor } from '../src/executor.js';
import { GithubConnection } from '../src/github/connection.js';
import { buildCommand, CommandIntake } from '../src/intake.js';
import { createAdapterMetrics } from '../src/metrics.js';
import { CommandProcessor } from '../src/processor.js';

export const SIM_TOKEN = `ghp_${Math.random().toString(36).slice(2)}${Math.random().toString(36).slice(2)}`;

export interface AdapterSettings {
  token: string;
  maxAttempts: number;
  attemptTimeoutMs: number;
  retryBaseDelayMs: number;
  retryMaxDelayMs: number;
  circuitFailureThreshold: number;
  circuitHalfOpenAfterMs: number;
  maxAgeMs: number;
}

export interface AdapterHarness {
  readonly sim: GithubSimulator;
  /** The adapter's HTTP base URL. */
  readonly url: string;
  readonly registry: Registry;
  stop(): Promise<void>;
}

/**
 * The adapter's parts wired as main.ts wires them, on the test's topics and Kafka, calling a GitHub simulator on
 * loopback and answering HTTP on a free port.
 */
export async function startAdapter(
  fixtures: { kafka: Kafka; topics: TestTopics; producer: EventProducer },
  overrides: Partial<AdapterSettings> = {},
): Promise<AdapterHarness> {
  const settings: AdapterSettings = {
    token: SIM_TOKEN,
    maxAttempts: 4,
    attemptTimeoutMs: 3000,
    retryBaseDelayMs: 20,
    retryMaxDelayMs: 2000,
    circuitFailureThreshold: 10,
    circuitHalfOpenAfterMs: 30000,
    maxAgeMs: 3600000,
    ...overrides,
  };
  const sim = createGithubSimulator({ tokens: [SIM_TOKEN], repos: ['acme/widgets'] });
  const simUrl = await sim.listen();
  const logger = createLogger({ service: 'api-gateway-adapter-test', level: 'silent' });
  const registry = createMetricsRegistry('api-gateway-adapter-test');
  const metrics = createAdapterMetrics(registry);
  const groupId = uniqueName('agw-');

  const executor = new CommandExecutor([
    new GithubConnection({
      name: 'github',
      baseUrl: simUrl,
      token: settings.token,
      maxConnections: 4,
      maxAttempts: settings.maxAttempts,
      attemptTimeoutMs: settings.attemptTimeoutMs,
      retryBaseDelayMs: settings.retryBaseDelayMs,
      retryMaxDelayMs: settings.retryMaxDelayMs,
      circuitFailureThreshold: settings.circuitFailureThreshold,
      circuitHalfOpenAfterMs: settings.circuitHalfOpenAfterMs,
      metrics,
    }),
  ]);
  const processor = new CommandProcessor({
    producer: fixtures.producer,
    deadLetters: new DeadLetters(fixtures.producer, fixtures.topics.names, { service: 'api-gateway-adapter', group: groupId }),
    executor,
    maxAgeMs: settings.maxAgeMs,
    logger,
    metrics,
  });
  const consumer = new EventConsumer(fixtures.kafka, fixtures.topics.names, {
    groupId,
    topics: [catalog.commands],
    fromBeginning: true,
    commitToKafka: true,
    maxWaitTimeMs: 100,
    partitionsConsumedConcurrently: 3,
    logger: testLogger,
    onFatal: (error) => {
      throw error;
    },
  });
  await consumer.start(processor.handleBatch);
  await waitFor(() => consumer.isJoined, { what: 'the adapter consumer to join' });

  const intake = new CommandIntake({ producer: fixtures.producer, connections: executor.connectionNames(), produceTimeoutMs: 5000, metrics });
  const app = buildApp({ logger, intake, registry, isStopping: () => false, checks: [] });
  await app.listen({ port: 0, host: '127.0.0.1' });
  const address = app.server.address();
  const url = `http://127.0.0.1:${typeof address === 'object' && address !== null ? address.port : 0}`;

  return {
    sim,
    url,
    registry,
    async stop() {
      await consumer.stop();
      await app.close();
      await executor.close();
      await sim.close();
    },
  };
}

/** A command envelope as the HTTP intake builds it, for producing straight onto the topic. */
export function command(type: CommandType, input: unknown, options: { now?: Date; connection?: string } = {}) {
  return buildCommand(
    { type, input, ...(options.connection === undefined ? {} : { connection: options.connection }) },
    { connections: ['github', ...(options.connection === undefined ? [] : [options.connection])], ...(options.now ? { now: options.now } : {}) },
  );
}

export async function postCommand(url: string, body: unknown, headers: Record<string, string> = {}) {
  const response = await fetch(`${url}/v1/commands`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}
