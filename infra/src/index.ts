export { kafkaVersion, localBrokerStatus, startLocalBroker, stopLocalBroker, waitForKafka } from './kafka-broker.js';
export type { LocalBroker, LocalBrokerOptions } from './kafka-broker.js';
export { formatLogLine, redact, type LogFormatOptions } from './log-format.js';
export { DEFAULT_DATABASE_URL, databaseName, dropDatabase, ensureDatabase, withDatabase } from './postgres.js';
export { repoRoot } from './paths.js';
export {
  describeExit,
  inheritedEnv,
  ManagedProcess,
  prepareStack,
  RunningStack,
  StackStartError,
  type PreparedStack,
  type ProcessExit,
  type StartStackOptions,
  type UnexpectedExit,
} from './run-stack.js';
export {
  COMPONENT_NAMES,
  DEFAULT_PORTS,
  DEFAULT_TOPIC_PREFIX,
  defineStack,
  EXAMPLE_REPOSITORY,
  findComponent,
  generateGithubToken,
  LOCAL_KAFKA_BROKERS,
  LOCAL_KAFKA_PORT,
  loadLocalStack,
  localUrl,
  portVariable,
  SERVICE_NAMES,
  SIMULATOR_NAME,
  StackConfigError,
  stackComponents,
  type ComponentName,
  type LocalStack,
  type ServiceName,
  type Stack,
  type StackComponent,
  type StackOptions,
} from './stack.js';
