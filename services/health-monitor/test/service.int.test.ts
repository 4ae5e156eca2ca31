import { createServer } from 'node:http';
import { join } from 'node:path';
import { freePort, ServiceProcess, test, waitFor } from '@switchyard/testkit';
import { describe, expect } from 'vitest';

const ENTRY = join(import.meta.dirname, '../dist/main.js');

/** A health URL that always answers 200. */
async function healthyTarget() {
  const server = createServer((_request, response) => response.writeHead(200).end('ok'));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  return { url: `http://127.0.0.1:${port}/zen`, close: () => new Promise<void>((resolve) => server.close(() => resolve())) };
}

describe('health monitor service', () => {
  test('GET /v1/health: 401 without a key, 403 AUTH_SCOPE_MISSING without health:read, 200 with it or admin', { timeout: 60000 }, async ({
    brokers,
    topics,
    keys,
  }) => {
    const reader = await keys.create(['health:read']);
    const adminKey = await keys.create(['admin']);
    const streamer = await keys.create(['stream:**']);
    const target = await healthyTarget();
    const port = await freePort();
    const monitor = await ServiceProcess.start({
      name: `health-monitor:${port}`,
      entry: ENTRY,
      url: `http://127.0.0.1:${port}`,
      readyTimeoutMs: 45000,
      env: {
        KAFKA_BROKERS: brokers,
        TOPIC_PREFIX: topics.prefix,
        HEALTH_TARGETS: `github=${target.url}`,
        HEALTH_INTERVAL_MS: '200',
        PORT: String(port),
        HOST: '127.0.0.1',
        LOG_LEVEL: process.env['SWITCHYARD_TEST_LOG_LEVEL'] ?? 'warn',
      },
    });
    try {
      const anonymous = await fetch(`${monitor.url}/v1/health`);
      expect(anonymous.status).toBe(401);
      expect(anonymous.headers.get('www-authenticate')).toMatch(/^Bearer realm="switchyard"/);
      expect(await anonymous.json()).toMatchObject({ error: { code: 'AUTH_MISSING' } });

      // The right key id with a wrong secret.
      const forged = `${reader.key.slice(0, -1)}${reader.key.endsWith('A') ? 'B' : 'A'}`;
      const wrongSecret = await fetch(`${monitor.url}/v1/health`, { headers: { authorization: `Bearer ${forged}` } });
      expect(wrongSecret.status).toBe(401);
      const refusal = await wrongSecret.text();
      expect(JSON.parse(refusal)).toMatchObject({ error: { code: 'AUTH_KEY_UNKNOWN' } });
      expect(refusal).not.toContain(forged);

      const withoutScope = await fetch(`${monitor.url}/v1/health`, { headers: streamer.headers });
      expect(withoutScope.status).toBe(403);
      expect(await withoutScope.json()).toEqual({
        error: { code: 'AUTH_SCOPE_MISSING', message: `key ${streamer.keyId} lacks the scope health:read`, retriable: false },
      });

      for (const key of [reader, adminKey]) {
        let status = 0;
        await waitFor(
          async () => {
            const response = await fetch(`${monitor.url}/v1/health`, { headers: key.headers });
            status = response.status;
            const body = (await response.json()) as { apis?: Record<string, { status: string }> };
            return status !== 200 || body.apis?.['github']?.status === 'up';
          },
          { timeoutMs: 10000, what: `/v1/health to report github up to ${key.record.name}` },
        );
        expect(status).toBe(200);
      }
      // The ops endpoints stay open.
      expect((await fetch(`${monitor.url}/readyz`)).status).toBe(200);
      const logged = monitor.lines.join('\n');
      for (const key of [reader, adminKey, streamer]) expect(logged).not.toContain(key.key);
    } finally {
      expect(await monitor.stop()).toBe(0);
      await target.close();
    }
  });
});
