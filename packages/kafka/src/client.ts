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

function kafkaLogCreator(logger: KafkaLogger) {
  return () =>
    ({ level, log }: LogEntry): void => {
      const { message, timestamp: _timestamp, logger: _name, ...fields } = log as LogEntry['log'] & { logger?: string };
      const error = typeof fields['error'] === 'string' ? fields['error'] : '';
      const routine = ROUTINE_ERRORS.some((text) => error.includes(text));
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
