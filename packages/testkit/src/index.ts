export { EventCollector } from './collector.js';
export { dockerAvailable } from './docker.js';
export { test, testLogger, type InfraFixtures, type TestDatabase, type TestTopics } from './fixtures.js';
export { resolveInfrastructure, type Infrastructure } from './infrastructure.js';
export { ServiceProcess, type ServiceProcessOptions } from './processes.js';
export { freePort, uniqueName, waitFor, type WaitOptions } from './wait.js';
