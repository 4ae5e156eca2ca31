export { kafkaVersion, localBrokerStatus, startLocalBroker, stopLocalBroker, waitForKafka } from './kafka-broker.js';
export type { LocalBroker, LocalBrokerOptions } from './kafka-broker.js';
export { DEFAULT_DATABASE_URL, databaseName, dropDatabase, ensureDatabase, withDatabase } from './postgres.js';
export { repoRoot } from './paths.js';
