import { DEFAULT_DATABASE_URL, localKafkaName, localKafkaPort, releaseLocalKafka, startLocalKafka, withDatabase } from '@switchyard/infra';
import { testClusterTeardown } from './cluster.js';
import { dockerAvailable } from './docker.js';

/** Where the tests' Kafka and Postgres are, and how to let go of them. */
export interface Infrastructure {
  readonly kafkaBrokers: string;
  /** A server URL; tests create their own databases on it. */
  readonly postgresUrl: string;
  readonly kafkaSource: 'KAFKA_BROKERS' | 'testcontainers' | 'local broker';
  readonly postgresSource: 'DATABASE_URL' | 'testcontainers' | 'local server';
  teardown(): Promise<void>;
}

/** Confluent's image: @testcontainers/kafka drives its entrypoint. */
const KAFKA_IMAGE = process.env['TESTCONTAINERS_KAFKA_IMAGE'] ?? 'confluentinc/cp-kafka:8.1.0';
const POSTGRES_IMAGE = process.env['TESTCONTAINERS_POSTGRES_IMAGE'] ?? 'postgres:17-alpine';

/**
 * One decision for every test run: explicit URLs win; otherwise containers where a Docker engine answers;
 * otherwise the local broker (on SWITCHYARD_KAFKA_PORT, default 9092; started here if it is not running, with a
 * lease given back at the end, which stops it unless something else of this checkout still uses it) and the local
 * Postgres server.
 */
export async function resolveInfrastructure(env: NodeJS.ProcessEnv = process.env): Promise<Infrastructure> {
  // The broker-failure tests' 3-node cluster starts on first use; stop it at the end if this run started it.
  const teardowns: (() => Promise<unknown>)[] = [testClusterTeardown()];
  const docker = !env['KAFKA_BROKERS'] || !env['DATABASE_URL'] ? await dockerAvailable() : false;

  let kafkaBrokers: string;
  let kafkaSource: Infrastructure['kafkaSource'];
  if (env['KAFKA_BROKERS']) {
    kafkaBrokers = env['KAFKA_BROKERS'];
    kafkaSource = 'KAFKA_BROKERS';
  } else if (docker) {
    const { KafkaContainer } = await import('@testcontainers/kafka');
    const container = await new KafkaContainer(KAFKA_IMAGE).withKraft().start();
    kafkaBrokers = `${container.getHost()}:${container.getMappedPort(9093)}`;
    kafkaSource = 'testcontainers';
    teardowns.push(() => container.stop());
  } else {
    const port = localKafkaPort(env);
    const name = localKafkaName(1, port);
    const broker = await startLocalKafka({ name, port, user: 'vitest' });
    kafkaBrokers = broker.brokers;
    kafkaSource = 'local broker';
    teardowns.push(() => releaseLocalKafka(name));
  }

  let postgresUrl: string;
  let postgresSource: Infrastructure['postgresSource'];
  if (env['DATABASE_URL']) {
    postgresUrl = env['DATABASE_URL'];
    postgresSource = 'DATABASE_URL';
  } else if (docker) {
    const { PostgreSqlContainer } = await import('@testcontainers/postgresql');
    const container = await new PostgreSqlContainer(POSTGRES_IMAGE).start();
    postgresUrl = container.getConnectionUri();
    postgresSource = 'testcontainers';
    teardowns.push(() => container.stop());
  } else {
    postgresUrl = withDatabase(DEFAULT_DATABASE_URL, 'postgres');
    postgresSource = 'local server';
  }

  return {
    kafkaBrokers,
    postgresUrl,
    kafkaSource,
    postgresSource,
    async teardown() {
      for (const teardown of teardowns.reverse()) await teardown();
    },
  };
}
