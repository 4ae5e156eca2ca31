import { logLevel } from 'kafkajs';
import { describe, expect, it } from 'vitest';
import { kafkaLogCreator } from '../src/client.js';

function capture() {
  const lines: { level: string; message: string }[] = [];
  const record = (level: string) => (_fields: object, message: string) => lines.push({ level, message });
  return { lines, logger: { debug: record('debug'), info: record('info'), warn: record('warn'), error: record('error') } };
}

describe("kafkajs's log lines", () => {
  it('keeps a consumer restart and the retriable answers of a starting cluster out of the error level', () => {
    const { lines, logger } = capture();
    const log = kafkaLogCreator(logger)();
    const entry = (level: number, message: string, fields: object = {}) =>
      log({ namespace: 'Consumer', level, label: 'ERROR', log: { timestamp: '', message, ...fields } });
    entry(logLevel.ERROR, "Crash: KafkaJSProtocolError: The coordinator is loading and hence can't process requests for this group", { groupId: 'g' });
    entry(logLevel.ERROR, 'Restarting the consumer in 300ms', { retryTime: 300 });
    entry(logLevel.ERROR, 'Response Heartbeat', { error: 'The group is rebalancing, so a rejoin is needed' });
    entry(logLevel.ERROR, 'Connection timeout', { broker: '127.0.0.1:9092' });
    entry(logLevel.WARN, 'KafkaJS v2.0.0 switched default partitioner');
    expect(lines).toEqual([
      { level: 'debug', message: expect.stringContaining('Crash: ') },
      { level: 'debug', message: 'Restarting the consumer in 300ms' },
      { level: 'debug', message: 'Response Heartbeat' },
      { level: 'error', message: 'Connection timeout' },
      { level: 'warn', message: 'KafkaJS v2.0.0 switched default partitioner' },
    ]);
  });
});
