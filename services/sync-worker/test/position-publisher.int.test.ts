import { topics } from '@switchyard/events';
import { EventProducer, type KafkaLogger } from '@switchyard/kafka';
import { test, waitFor } from '@switchyard/testkit';
import { Registry } from 'prom-client';
import { describe, expect } from 'vitest';
import { PositionPublisher, type CommittedPosition } from '../src/position-publisher.js';
import { metricValue, PositionReader, positionKey } from './support/positions.js';

/** Log lines the publisher wrote, by level. */
function recordingLogger() {
  const lines: { level: string; message: string }[] = [];
  const at = (level: string) => (_fields: object, message: string) => void lines.push({ level, message });
  const logger: KafkaLogger = { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
  return { logger, lines };
}

const position = (topic: string, partition: number, nextOffset: number): CommittedPosition => ({
  projection: 'entities',
  topic,
  partition,
  nextOffset: String(nextOffset),
  cluster: 'test-cluster',
});

describe('PositionPublisher', () => {
  test('one produce in flight; positions committed meanwhile are coalesced to the newest per partition', async ({ kafka, topics: t, producer }) => {
    const registry = new Registry();
    const { logger } = recordingLogger();
    const publisher = new PositionPublisher({ producer, logger, registry, retry: { initialMs: 50, maxMs: 200 } });
    const reader = await new PositionReader(kafka, t.names).start();
    try {
      const topic = t.name(topics.entities);
      // The first goes out at once; the other 999 of partition 0 wait behind it and only the newest is left.
      for (let offset = 1; offset <= 1000; offset += 1) publisher.publish(position(topic, 0, offset));
      publisher.publish(position(topic, 1, 7));
      expect(await publisher.stop(10000)).toBe(true);
      await waitFor(() => reader.latest.get(positionKey('entities', topic, 0))?.nextOffset === '1000', { what: 'the newest position' });
      await waitFor(() => reader.latest.get(positionKey('entities', topic, 1))?.nextOffset === '7', { what: 'the other partition' });
      expect(reader.byKey().get(positionKey('entities', topic, 0))?.map((event) => event.data.nextOffset)).toEqual(['1', '1000']);
      const metrics = await registry.metrics();
      expect(metricValue(metrics, 'switchyard_sync_positions_published_total', 'projection="entities"')).toBe(3);
      expect(metricValue(metrics, 'switchyard_sync_position_publish_failures_total')).toBe(0);
    } finally {
      await reader.stop();
    }
  });

  test('a failed publish is counted and warned about once, and the latest position goes out when Kafka takes it', async ({ kafka, topics: t }) => {
    const registry = new Registry();
    const { logger, lines } = recordingLogger();
    // A producer of its own, disconnected: every send fails until it connects again.
    const producer = new EventProducer(kafka, t.names);
    const publisher = new PositionPublisher({ producer, logger, registry, retry: { initialMs: 50, maxMs: 200 } });
    const reader = await new PositionReader(kafka, t.names).start();
    try {
      const topic = t.name(topics.entities);
      publisher.publish(position(topic, 2, 10));
      await waitFor(async () => metricValue(await registry.metrics(), 'switchyard_sync_position_publish_failures_total') >= 3, {
        what: 'a few failed attempts',
      });
      publisher.publish(position(topic, 2, 20));
      publisher.publish(position(topic, 2, 30));
      await producer.connect();
      await waitFor(() => reader.latest.get(positionKey('entities', topic, 2))?.nextOffset === '30', { what: 'the latest position' });
      expect(await publisher.stop(5000)).toBe(true);
      // Only the latest went out: the older ones were replaced while Kafka refused them.
      expect(reader.byKey().get(positionKey('entities', topic, 2))?.map((event) => event.data.nextOffset)).toEqual(['30']);
      expect(lines.filter((line) => line.level === 'warn')).toHaveLength(1);
      expect(lines.filter((line) => line.level === 'info').map((line) => line.message)).toEqual(['publishing committed positions recovered']);
      expect(metricValue(await registry.metrics(), 'switchyard_sync_positions_published_total')).toBe(1);
    } finally {
      await reader.stop();
      await producer.disconnect();
    }
  });
});
