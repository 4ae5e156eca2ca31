import type { CommandType } from '@switchyard/events';
import { createKafka, EventProducer } from '@switchyard/kafka';
import { createLogger, createMetricsRegistry, type Registry } from '@switchyard/service-runtime';
import { createGithubSimulator, type GithubSimulator, type GithubSimulatorOptions } from '@switchyard/simulators';
import { testKeys, testLogger, uniqueName, type TestKey, type TestTopics } from '@switchyard/testkit';
import { loadApiGatewayAdapterConfig } from '../src/config.js';
import { buildCommand } from '../src/intake.js';
import { createAdapter, type Adapter } from '../src/wiring.js';

export const SIM_TOKEN = `ghp_${Math.random().toString(36).slice(2)}${Math.random().toString(36).slice(2)}`;

export interface AdapterHarness {
  readonly sim: GithubSimulator;
  /** The adapter's HTTP base URL. */
  readonly url: string;
  readonly registry: Registry;
  readonly adapter: Adapter;
  /** The API key the harness made for the test's topics (`commands:send:**`, `commands:read`). */
  readonly key: TestKey;
  /** `{ authorization: 'Bearer <key>' }`. */
  readonly headers: { readonly authorization: string };
  /** The shutdown steps main.ts would run on SIGTERM, in order. */
  stop(): Promise<void>;
}

/** The simulators' server timeout in these tests (GitHub's is 10 s). */
export const SIM_SERVER_TIMEOUT_MS = 1000;
/** How long after a lost answer a lookup that finds nothing proves the write absent (see TEST_ENV). */
export const SETTLE_MS = 3 * SIM_SERVER_TIMEOUT_MS;

/** Test defaults: short attempts and delays, lookups for lost answers settled as fast as the simulator allows. */
const TEST_ENV = {
  COMMAND_MAX_ATTEMPTS: '4',
  COMMAND_ATTEMPT_TIMEOUT_MS: '3000',
  COMMAND_RETRY_BASE_DELAY_MS: '20',
  COMMAND_RETRY_MAX_DELAY_MS: '2000',
  COMMAND_LOOKUP_INTERVAL_MS: '100',
  CIRCUIT_FAILURE_THRESHOLD: '10',
  CIRCUIT_HALF_OPEN_AFTER_MS: '30000',
  KAFKA_SESSION_TIMEOUT_MS: '10000',
  // The simulator ends every request after SIM_SERVER_TIMEOUT_MS, as GitHub does after 10 s, so a lost answer can be
  // settled much sooner than against GitHub. Not at exactly that time, though: the simulator shares this process's
  // event loop with the adapter, and on a busy machine a request the adapter has given up on can reach it a second
  // or more later — a delay a provider's own clock never sees. The margin keeps "absent after the settle time" true.
  GITHUB_SETTLE_MS: String(SETTLE_MS),
  // Budgets are tested on their own (auth.int.test.ts); the other tests send as fast as they like.
  COMMAND_RATE_PER_SECOND: '1000000',
  COMMAND_RATE_BURST: '1000000',
  LOG_LEVEL: 'silent',
};



/** One key per test's topics, so several adapters of one test are one caller (idempotency keys are per caller). */
const keysByPrefix = new Map<string, Promise<TestKey>>();

/** Publishes an API key to the api-keys topic of `prefix` (and returns it), outside any fixture. */
export async function publishKey(brokers: string, topics: TestTopics, scopes: readonly string[], options: { name?: string; limits?: { commandsPerSecond: number; burst: number } } = {}): Promise<TestKey> {
  const kafka = createKafka({ brokers: brokers.split(','), clientId: uniqueName('keys-'), logger: testLogger });
  const producer = new EventProducer(kafka, topics.names);
  await producer.connect();
  try {
    return await testKeys(producer).create(scopes, options);
  } finally {
    await producer.disconnect();
  }
}

function harnessKey(brokers: string, topics: TestTopics): Promise<TestKey> {
  let key = keysByPrefix.get(topics.prefix);
  if (key === undefined) {
    key = publishKey(brokers, topics, ['commands:send:**', 'commands:read'], { name: 'adapter harness' });
    keysByPrefix.set(topics.prefix, key);
  }
  return key;
}

/** A lifecycle like main.ts's, without signals: `stop()` runs the registered steps in order; `fatal` fails the test. */
function testLifecycle() {
  const steps: { name: string; run: () => Promise<void> | void }[] = [];
  let stopping = false;
  const fatals: unknown[] = [];
  return {
    fatals,
    get isStopping() {
      return stopping;
    },
    onStop(name: string, run: () => Promise<void> | void) {
      steps.push({ name, run });
    },
    fatal(error: unknown) {
      fatals.push(error);
    },
    async stop() {
      stopping = true;
      for (const step of steps) await step.run();
    },
  };
}

/**
 * The adapter exactly as main.ts wires it (`createAdapter`), on the test's topics and Kafka, calling a GitHub
 * simulator on loopback (or `simulatorUrl`) and answering HTTP on a free port. `env` overrides its configuration.
 */
export async function startAdapter(
  fixtures: { brokers: string; topics: TestTopics },
  options: {
    /** Configuration on top of the test defaults; a function gets the simulator's URL (for more connections). */
    env?: Record<string, string> | ((simUrl: string) => Record<string, string>);
    shared?: { sim: GithubSimulator; url: string };
    simulator?: Partial<GithubSimulatorOptions>;
  } = {},
): Promise<AdapterHarness> {
  const sim =
    options.shared?.sim ??
    createGithubSimulator({ tokens: [SIM_TOKEN], repos: ['acme/widgets'], serverTimeoutMs: SIM_SERVER_TIMEOUT_MS, ...options.simulator });
  const simUrl = options.shared?.url ?? (await sim.listen());
  const config = loadApiGatewayAdapterConfig({
    KAFKA_BROKERS: fixtures.brokers,
    TOPIC_PREFIX: fixtures.topics.prefix,
    KAFKA_GROUP_ID: uniqueName('agw-'),
    PORT: '0',
    HOST: '127.0.0.1',
    GITHUB_API_URL: simUrl,
    GITHUB_TOKEN: SIM_TOKEN,
    ...TEST_ENV,
    ...(typeof options.env === 'function' ? options.env(simUrl) : options.env),
  });
  const logger = createLogger({ service: 'api-gateway-adapter-test', level: config.LOG_LEVEL });
  const registry = createMetricsRegistry('api-gateway-adapter-test');
  const lifecycle = testLifecycle();
  const key = await harnessKey(fixtures.brokers, fixtures.topics);
  const adapter = createAdapter(config, { logger, registry, lifecycle });
  await adapter.start();
  const address = adapter.app.server.address();
  const url = `http://127.0.0.1:${typeof address === 'object' && address !== null ? address.port : 0}`;
  return {
    sim,
    url,
    registry,
    adapter,
    key,
    headers: key.headers,
    async stop() {
      await lifecycle.stop();
      if (!options.shared) await sim.close();
      if (lifecycle.fatals.length > 0) throw lifecycle.fatals[0] as Error;
    },
  };
}

/** A command envelope as the HTTP intake builds it, for producing straight onto the topic. */
export function command(type: CommandType, input: unknown, options: { now?: Date; connection?: string; idempotencyKey?: string } = {}) {
  return buildCommand(
    { type, input, ...(options.connection === undefined ? {} : { connection: options.connection }) },
    {
      connections: new Map([['github', 'github'], ...(options.connection === undefined ? [] : [[options.connection, 'github'] as const])]),
      ...(options.now ? { now: options.now } : {}),
      ...(options.idempotencyKey ? { idempotencyKey: options.idempotencyKey } : {}),
    },
  );
}

export interface Answer {
  readonly status: number;
  readonly headers: globalThis.Headers;
  readonly body: Record<string, unknown>;
}

/** POST /v1/commands to an adapter, with its harness key unless `headers` bring their own `authorization`. */
export async function postCommand(
  target: { readonly url: string; readonly headers: Record<string, string> },
  body: unknown,
  headers: Record<string, string> = {},
  query = '',
): Promise<Answer> {
  const response = await fetch(`${target.url}/v1/commands${query}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...target.headers, ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  return { status: response.status, headers: response.headers, body: (await response.json()) as Record<string, unknown> };
}
