import { Kafka, logLevel, type LogEntry, type RetryOptions } from 'kafkajs';

/** The logger shape we need (pino's satisfies it). */
export interface KafkaLogger {
  debug(fields: object, message: string): void;
  info(fields: object, message: string): void;
  warn(fields: object, message: string): void;
  error(fields: object, message: string): void;
}

/** A logger that drops everything: for tools that report Kafka failures themselves. */
export const silentKafkaLogger: KafkaLogger = { debug() {}, info() {}, warn() {}, error() {} };

export interface KafkaClientOptions {
  brokers: readonly string[];
  clientId: string;
  logger: KafkaLogger;
  connectionTimeoutMs?: number;
  requestTimeoutMs?: number;
  /** Retry policy for requests and for the consumer's restarts; kafkajs defaults otherwise. */
  retry?: RetryOptions;
}

const levelNames: Record<number, 'error' | 'warn' | 'info' | 'debug'> = {
  [logLevel.ERROR]: 'error',
  [logLevel.WARN]: 'warn',
  [logLevel.INFO]: 'info',
  [logLevel.DEBUG]: 'debug',
};

/**
 * kafkajs logs a line for every retriable broker response during normal operation (coordinator loading, a
 * rebalance in progress). Those arrive at our `debug`; everything else keeps its level.
 */
const ROUTINE_ERRORS = [
  'The coordinator is loading',
  'The group coordinator is not available',
  'The group is rebalancing',
  'concurrent operation on the same transaction',
  'This server is not the leader',
  'There is no leader for this topic-partition',
];

/** Whether an error is one kafkajs meets routinely while a cluster starts or moves leaders, and retries by itself. */
export function isRoutineKafkaError(text: string): boolean {
  return ROUTINE_ERRORS.some((routine) => text.includes(routine));
}

/**
 * kafkajs reports a consumer's restart in two ERROR lines with a stack ("Crash: …", "Restarting the consumer in …");
 * EventConsumer says it in one line of its own at the level the cause deserves, so those go to `debug`.
 */
const RESTART_LINES = ['Crash: ', 'Restarting the consumer in '];

export function kafkaLogCreator(logger: KafkaLogger) {
  return () =>
    ({ level, log }: LogEntry): void => {
      const { message, timestamp: _timestamp, logger: _name, ...fields } = log as LogEntry['log'] & { logger?: string };
      const error = typeof fields['error'] === 'string' ? fields['error'] : '';
      const routine = isRoutineKafkaError(error) || RESTART_LINES.some((prefix) => message.startsWith(prefix));
      const name = routine ? 'debug' : (levelNames[level] ?? 'info');
      logger[name]({ component: 'kafka', ...fields }, message);
    };
}

/** One kafkajs client per process; producers, consumers and admins are made from it. */
export function createKafka(options: KafkaClientOptions): Kafka {
  return new Kafka({
    clientId: options.clientId,
    brokers: [...options.brokers],
    connectionTimeout: options.connectionTimeoutMs ?? 3000,
    requestTimeout: options.requestTimeoutMs ?? 30000,
    logLevel: logLevel.INFO,
    logCreator: kafkaLogCreator(options.logger),
    ...(options.retry === undefined ? {} : { retry: options.retry }),
  });
}

export type { Kafka };
