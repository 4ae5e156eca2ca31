import { silentKafkaLogger, type KafkaLogger } from '@switchyard/kafka';

/** Logs kafkajs warnings and errors to the test output only when SWITCHYARD_TEST_LOGS is set. */
export const testLogger: KafkaLogger = process.env['SWITCHYARD_TEST_LOGS']
  ? {
      debug() {},
      info() {},
      warn: (fields, message) => console.warn(message, fields),
      error: (fields, message) => console.error(message, fields),
    }
  : silentKafkaLogger;
