export * from './node.js';
export { test, type InfraFixtures, type TestDatabase, type TestTopics } from './fixtures.js';
