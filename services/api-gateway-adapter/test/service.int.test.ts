import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { topics as catalog, type TopicEvent, type Topics } from '@switchyard/events';
import { createGithubSimulator } from '@switchyard/simulators';
import { assertBuilt, freePort, ServiceProcess, test } from '@switchyard/testkit';
import { describe, expect } from 'vitest';
import { postCommand, SIM_SERVER_TIMEOUT_MS } from './harness.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const entry = join(root, 'dist', 'main.js');


type ResultEvent = TopicEvent<Topics['commandResults']>;
const final = (commandId: unknown) => (event: ResultEvent) => event.data.commandId === commandId && event.data.status !== 'accepted';

describe('api-gateway-adapter service (built, as a child process)', () => {
  test('takes commands over HTTP end to end, keeps the token out of every event and log line, and stops cleanly', async ({
    brokers,
    topics,
    producer,
    collect,
    keys,
  }) => {
    const key = await keys.create(['commands:send:github.issue.*'], { name: 'service test' });
    assertBuilt(root, 'dist/main.js');
    const token = `ghp_e2e_${Math.random().toString(36).slice(2)}${Math.random().toString(36).slice(2)}`;
    const sim = createGithubSimulator({ tokens: [token], repos: ['acme/widgets'], serverTimeoutMs: SIM_SERVER_TIMEOUT_MS });
    const simUrl = await sim.listen();
    const port = await freePort();
    const [commands, results, entities, deadLetters] = await Promise.all([
      collect(catalog.commands),
      collect(catalog.commandResults),
      collect(catalog.entities),
      collect(catalog.deadLetters),
    ]);
    const service = await ServiceProcess.start({
      name: 'api-gateway-adapter',
      entry,
      url: `http://127.0.0.1:${port}`,
      env: {
        PORT: String(port),
        HOST: '127.0.0.1',
        LOG_LEVEL: 'debug',
        KAFKA_BROKERS: brokers,
        TOPIC_PREFIX: topics.prefix,
        GITHUB_API_URL: simUrl,
        GITHUB_TOKEN: token,
        GITHUB_SETTLE_MS: String(SIM_SERVER_TIMEOUT_MS),
        COMMAND_RETRY_BASE_DELAY_MS: '20',
      },
    });
    const client = { url: service.url, headers: key.headers };
    try {
      const ready = await fetch(`${service.url}/readyz`);
      expect(await ready.json()).toMatchObject({
        status: 'ready',
        checks: { kafka: { ok: true }, producer: { ok: true }, 'api keys': { ok: true }, 'command view': { ok: true }, consumer: { ok: true } },
      });

      // A 502 before the create took effect: looked for, not found, sent again once GitHub is done with the first.
      sim.control.injectFault({ response: 502, count: 1, method: 'POST', route: '/repos/{owner}/{repo}/issues' });
      const created = await postCommand(client, {
        type: 'github.issue.create',
        input: { owner: 'acme', repo: 'widgets', title: 'From the built service', labels: ['e2e'] },
      });
      expect(created.status).toBe(202);
      const invalid = await postCommand(client, { type: 'github.issue.create', input: { owner: 'acme', repo: 'widgets' } });
      expect({ status: invalid.status, body: invalid.body }).toEqual({
        status: 400,
        body: { error: { code: 'AGW_COMMAND_INPUT_INVALID', field: 'input.title', message: expect.any(String), retriable: false } },
      });
      const refused = await postCommand(client, {
        type: 'github.issue.create',
        input: { owner: 'acme', repo: 'widgets', title: 'x', assignees: ['ghost'] },
      });
      await producer.sendRaw([
        { topic: topics.name(catalog.commands), messages: [{ key: 'github:repository:acme/widgets', value: 'not json', headers: {} }] },
      ]);

      const succeeded = await results.waitForEvent(final(created.body['commandId']));
      expect(succeeded.data).toMatchObject({ status: 'succeeded', attempts: 2, entity: { entityId: 'acme/widgets#1' } });
      const upserted = await entities.waitForEvent((event) => event.causationid === created.body['commandId']);
      expect(upserted.data.state).toEqual(sim.control.issue('acme/widgets', 1));
      expect((await results.waitForEvent(final(refused.body['commandId']))).data).toMatchObject({
        status: 'failed',
        error: { code: 'AGW_UPSTREAM_VALIDATION_FAILED', field: 'data.input.assignees' },
      });
      await results.waitForEvent((event) => event.data.status === 'rejected' && event.data.error?.code === 'EVT_NOT_JSON');
      await deadLetters.waitForCount(1);

      const metrics = await (await fetch(`${service.url}/metrics`)).text();
      expect(metrics).toMatch(/switchyard_commands_total\{[^}]*type="github.issue.create"[^}]*status="succeeded"[^}]*\} 1/);
      expect(metrics).toMatch(/switchyard_upstream_requests_total\{[^}]*status="502"[^}]*\} 1/);

      expect(await service.stop()).toBe(0);
      const logs = service.logs();
      expect(logs.find((line) => line['msg'] === 'starting')?.['config']).toMatchObject({
        connections: [{ name: 'github', provider: 'github', baseUrl: simUrl, token: '[redacted]' }],
      });
      expect(logs.some((line) => line['msg'] === 'command succeeded')).toBe(true);
      expect(logs.some((line) => line['msg'] === 'shutdown complete' && line['exitCode'] === 0)).toBe(true);
      const stepsInOrder = logs.filter((line) => line['msg'] === 'stopped').map((line) => line['step']);
      expect(stepsInOrder).toEqual(['consumer', 'http', 'command view', 'api keys', 'producer', 'upstream', 'admin']);

      // The token and the API key appear nowhere: not in a log line, not in any record on any topic.
      expect(service.lines.length).toBeGreaterThan(20);
      const secret = key.key.slice(key.keyId.length + 1);
      for (const line of service.lines) {
        expect(line).not.toContain(token);
        expect(line).not.toContain(secret);
      }
      const records = [
        ...commands.records,
        ...results.records,
        ...entities.records,
        ...deadLetters.records,
      ].map((record) => `${record.key?.toString() ?? ''} ${record.value?.toString() ?? ''} ${Object.values(record.headers).map(String).join(' ')}`);
      expect(records.length).toBeGreaterThanOrEqual(8);
      for (const record of records) {
        expect(record).not.toContain(token);
        expect(record).not.toContain(secret);
      }
      // Every command and its results name the key that sent them, by id.
      expect(commands.events.filter((event) => event.authid !== undefined).map((event) => [event.authtype, event.authid])).toEqual([
        ['api_key', key.keyId],
        ['api_key', key.keyId],
      ]);
      expect(succeeded).toMatchObject({ authtype: 'api_key', authid: key.keyId });
      expect(upserted).toMatchObject({ authtype: 'api_key', authid: key.keyId });
    } finally {
      service.kill();
      await sim.close();
    }
  });
});
