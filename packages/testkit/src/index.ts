export * from './node.js';
export { acquireTestCluster, TEST_CLUSTER, type TestCluster } from './cluster.js';
export { clusterTest, test, type InfraFixtures, type TestDatabase, type TestTopics } from './fixtures.js';
