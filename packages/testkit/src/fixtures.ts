import { topics as catalog, type TopicSpec } from '@switchyard/events';
import { dropDatabase, ensureDatabase, withDatabase } from '@switchyard/infra';
import { createKafka, EventProducer, KafkaAdmin, TopicNames, type Kafka } from '@switchyard/kafka';
import pg from 'pg';
import { inject, test as base } from 'vitest';
import { acquireTestCluster, type TestCluster } from './cluster.js';
import { EventCollector } from './collector.js';
import { testKeys, type TestKeys } from './keys.js';
import { testLogger } from './logger.js';
import { uniqueName } from './wait.js';

export interface TestDatabase {
  readonly url: string;
  readonly pool: pg.Pool;
}

export interface TestTopics {
  /** The unique prefix this test's topics share: give it to services as TOPIC_PREFIX. */
  readonly prefix: string;
  readonly names: TopicNames;
  name(spec: TopicSpec): string;
}

export interface InfraFixtures {
  /** Comma-separated bootstrap servers, as services take them in KAFKA_BROKERS. */
  brokers: string;
  kafka: Kafka;
  admin: KafkaAdmin;
  /** The whole topic catalog under a prefix unique to this test; deleted afterwards. */
  topics: TestTopics;
  producer: EventProducer;
  /** A database unique to this test on the test Postgres server; dropped afterwards. */
  database: TestDatabase;
  /** Starts a collector on a topic of this test; stopped afterwards. */
  collect: <T extends TopicSpec>(topic: T) => Promise<EventCollector<T>>;
  /** Makes and revokes API keys on this test's api-keys topic. */
  keys: TestKeys;
}

export const test = base.extend<InfraFixtures>({
  // eslint-disable-next-line no-empty-pattern -- vitest fixtures must destructure their first parameter
  brokers: async ({}, use) => {
    await use(inject('kafkaBrokers'));
  },
  kafka: async ({ brokers }, use) => {
    await use(createKafka({ brokers: brokers.split(','), clientId: uniqueName('test-'), logger: testLogger }));
  },
  admin: async ({ kafka }, use) => {
    const admin = new KafkaAdmin(kafka, new TopicNames(''), testLogger);
    await admin.connect();
    await use(admin);
    await admin.disconnect();
  },
  topics: async ({ kafka }, use) => {
    const prefix = `${uniqueName('t')}.`;
    const names = new TopicNames(prefix);
    const admin = new KafkaAdmin(kafka, names, testLogger);
    await admin.connect();
    try {
      await admin.provision();
      await use({ prefix, names, name: (spec) => names.name(spec) });
    } finally {
      const created = new Set(await admin.listTopics());
      await admin.deleteTopics(Object.values(catalog).map((spec) => names.name(spec)).filter((name) => created.has(name)));
      await admin.disconnect();
    }
  },
  producer: async ({ kafka, topics }, use) => {
    const producer = new EventProducer(kafka, topics.names);
    await producer.connect();
    await use(producer);
    await producer.disconnect();
  },
  // eslint-disable-next-line no-empty-pattern -- vitest fixtures must destructure their first parameter
  database: async ({}, use) => {
    const url = withDatabase(inject('postgresUrl'), uniqueName('sy_t_'));
    await ensureDatabase(url);
    const pool = new pg.Pool({ connectionString: url, max: 4 });
    // pool.end() resolves while its clients' sockets are still closing; the forced drop below may terminate one of
    // them then, and that client's error is not the test's.
    pool.on('error', () => undefined);
    pool.on('connect', (client) => client.on('error', () => undefined));
    await use({ url, pool });
    await pool.end();
    await dropDatabase(url);
  },
  keys: async ({ producer }, use) => {
    await use(testKeys(producer));
  },
  collect: async ({ kafka, topics }, use) => {
    const started: EventCollector<TopicSpec>[] = [];
    await use(async (topic) => {
      const collector = await new EventCollector(kafka, topics.names, topic, testLogger).start();
      started.push(collector as unknown as EventCollector<TopicSpec>);
      return collector;
    });
    await Promise.all(started.map((collector) => collector.stop()));
  },
});

/**
 * The same fixtures on the local 3-node test cluster, plus `cluster` to kill and restart its nodes. Tests using it
 * take turns (the cluster is held for the whole test), and each gets the cluster back whole when it ends.
 */
export const clusterTest = test.extend<{ cluster: TestCluster; brokers: string }>({
  // eslint-disable-next-line no-empty-pattern -- vitest fixtures must destructure their first parameter
  cluster: async ({}, use) => {
    const { cluster, release } = await acquireTestCluster();
    try {
      await use(cluster);
    } finally {
      await release();
    }
  },
  brokers: async ({ cluster }, use) => {
    await use(cluster.brokers);
  },
});
