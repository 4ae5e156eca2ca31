export * from './node.js';
export { acquireTestCluster, TEST_CLUSTER, type TestCluster } from './cluster.js';
export { clusterTest, test, type InfraFixtures, type TestDatabase, type TestTopics } from './fixtures.js';
export { testKeys, type TestKey, type TestKeys } from './keys.js';
