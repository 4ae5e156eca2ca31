export {
  activeController,
  isAlive,
  kafkaVersion,
  killLocalKafkaNode,
  localKafkaStatus,
  releaseLocalKafka,
  restartLocalKafkaNode,
  startLocalKafka,
  stopLocalKafka,
  waitForKafka,
} from './kafka-broker.js';
export type { KafkaUser, LocalKafka, LocalKafkaNode, LocalKafkaOptions, LocalKafkaStatus } from './kafka-broker.js';
export { describeHolder, portHolder, type PortHolder } from './port-holder.js';
export { lockFile } from './pids.js';
export {
  createStackKey,
  decideDevKey,
  DEV_KEY_CREATED_BY,
  DEV_KEY_FILE,
  DEV_KEY_NAME,
  DEV_KEY_SCOPES,
  devKeyPath,
  ensureDevKey,
  parseDevKeyFile,
  type DevKey,
  type DevKeyDecision,
  type DevKeyFile,
  type StackKeysOptions,
} from './keys.js';
export { formatLogLine, redact, type LogFormatOptions } from './log-format.js';
export { DEFAULT_DATABASE_URL, databaseName, dropDatabase, ensureDatabase, withDatabase } from './postgres.js';
export { repoRoot } from './paths.js';
export {
  describeExit,
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
  defineStack,
  EXAMPLE_REPOSITORY,
  findComponent,
  generateGithubToken,
  KAFKA_PORT_VARIABLE,
  LOCAL_KAFKA_PORT,
  localKafkaBrokers,
  localKafkaName,
  localKafkaPort,
  SERVICE_NAMES,
  loadLocalStack,
  localUrl,
  portVariable,
  StackConfigError,
  stackComponents,
  type ComponentName,
  type LocalStack,
  type ServiceName,
  type Stack,
  type StackComponent,
  type StackOptions,
} from './stack.js';
