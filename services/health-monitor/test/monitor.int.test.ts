import { createServer, type Server } from 'node:http';
import { topics } from '@switchyard/events';
import { createLogger, createMetricsRegistry } from '@switchyard/service-runtime';
import { test } from '@switchyard/testkit';
import { Agent } from 'undici';
import { describe, expect } from 'vitest';
import { HealthMonitor } from '../src/monitor.js';

/** A health URL whose answer the test controls. */
async function controllableTarget() {
  let mode: 'ok' | 'error' | 'slow' = 'ok';
  const server: Server = createServer((_request, response) => {
    if (mode === 'error') {
      response.writeHead(503).end('unavailable');
    } else if (mode === 'slow') {
      setTimeout(() => response.writeHead(200).end('ok'), 150);
    } else {
      response.writeHead(200).end('ok');
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  return {
    url: `http://127.0.0.1:${port}/zen`,
    set: (next: typeof mode) => {
      mode = next;
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

describe('health monitor', () => {
  test('publishes each status change of each API to the health topic, keyed by API', async ({ producer, collect }) => {
    const target = await controllableTarget();
    const dispatcher = new Agent();
    const monitor = new HealthMonitor({
      targets: [
        { api: 'github', url: target.url },
        { api: 'nowhere', url: 'http://127.0.0.1:1/zen' },
      ],
      dispatcher,
      producer,
      policy: { degradedLatencyMs: 100, failureThreshold: 2 },
      intervalMs: 1000,
      timeoutMs: 1000,
      logger: createLogger({ service: 'test', level: 'silent' }),
      registry: createMetricsRegistry('test'),
    });
    const health = await collect(topics.apiHealth);
    try {
      await monitor.probeAll(); // github up, nowhere degraded
      target.set('error');
      await monitor.probeAll(); // github degraded, nowhere down
      await monitor.probeAll(); // github down
      await monitor.probeAll(); // no change
      target.set('slow');
      await monitor.probeAll(); // github degraded (slow)
      target.set('ok');
      await monitor.probeAll(); // github up

      const records = await health.waitForCount(7);
      const github = records.filter((record) => record.key?.toString() === 'github');
      const statuses = github.map((record) => (record.decoded.ok ? record.decoded.event.data : undefined));
      expect(statuses.map((data) => [data?.status, data?.reason])).toEqual([
        ['up', null],
        ['degraded', 'http_503'],
        ['down', 'http_503'],
        ['degraded', 'slow'],
        ['up', null],
      ]);
      const nowhere = records
        .filter((record) => record.key?.toString() === 'nowhere')
        .map((record) => (record.decoded.ok ? [record.decoded.event.data.status, record.decoded.event.data.reason] : []));
      expect(nowhere).toEqual([
        ['degraded', 'connection_refused'],
        ['down', 'connection_refused'],
      ]);
      expect(monitor.snapshot()['github']).toMatchObject({ status: 'up', consecutiveFailures: 0 });
    } finally {
      await monitor.stop();
      await dispatcher.close();
      await target.close();
    }
  });
});
