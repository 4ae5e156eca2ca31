import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { topics } from '@switchyard/events';
import { freePort, ServiceProcess, waitFor } from '@switchyard/testkit';
import { describe, expect, onTestFinished } from 'vitest';
import { test } from '@switchyard/testkit';
import { commandSucceeded, issueUpserted, settle, TestClient, upgradeResponse } from './harness.js';

const ENTRY = fileURLToPath(new URL('../dist/main.js', import.meta.url));

describe('ws-fanout as a process (node dist/main.js)', () => {
  test('streams live events to a key, then on SIGTERM closes clients with 1001, deletes its group and exits 0', async ({
    brokers,
    kafka,
    topics: t,
    producer,
    keys,
  }) => {
    expect(existsSync(ENTRY), `${ENTRY} is missing: build with npx tsc -b services/ws-fanout`).toBe(true);
    const key = await keys.create(['stream:github.issue.*']);
    const before = issueUpserted(1);
    await producer.send(topics.entities, [before]);

    const port = await freePort();
    const service = await ServiceProcess.start({
      name: 'ws-fanout',
      entry: ENTRY,
      url: `http://127.0.0.1:${port}`,
      env: { KAFKA_BROKERS: brokers, TOPIC_PREFIX: t.prefix, PORT: String(port), HOST: '127.0.0.1', LOG_LEVEL: 'info' },
    });
    onTestFinished(() => service.kill());

    const admin = kafka.admin();
    await admin.connect();
    onTestFinished(() => admin.disconnect());
    const groupsNow = async () => (await admin.listGroups()).groups.map((group) => group.groupId);
    const ours = (await groupsNow()).filter((group) => group.startsWith(`${t.prefix}ws-fanout.`));
    expect(ours).toHaveLength(1);

    const anonymous = await upgradeResponse(`ws://127.0.0.1:${port}/v1/stream`);
    expect(anonymous.status).toBe(401);
    expect(JSON.parse(anonymous.body)).toMatchObject({ error: { code: 'AUTH_MISSING' } });
    const client = await TestClient.connect(`ws://127.0.0.1:${port}/v1/stream?types=github.issue.*`, key);
    onTestFinished(() => client.socket.terminate());
    await client.waitForFrame((frame) => frame.op === 'subscribed' && frame.id === 'default');
    const after = issueUpserted(2);
    await producer.send(topics.entities, [after]);
    await producer.send(topics.commandResults, [commandSucceeded('cmd-1')]);
    await client.waitForEvents(1);
    await settle();
    expect(client.eventIds()).toEqual([after.id]);

    const exitCode = service.stop();
    expect(await client.closed).toEqual({ code: 1001, reason: 'server shutting down' });
    expect(await exitCode).toBe(0);
    await waitFor(async () => !(await groupsNow()).includes(ours[0]!), { what: 'the consumer group to be deleted' });
    const messages = service.logs().map((line) => line['msg']);
    expect(messages).toContain('positioned at live offsets');
    expect(messages).toContain('api keys loaded');
    expect(messages).toContain('shutdown complete');
    expect(JSON.stringify(service.logs())).not.toContain(key.key.slice(key.keyId.length));
  });

  test('refuses to start with bad configuration, naming each variable', async () => {
    const port = await freePort();
    const service = await ServiceProcess.start({
      name: 'ws-fanout',
      entry: ENTRY,
      url: `http://127.0.0.1:${port}`,
      waitFor: 'none',
      env: { PORT: String(port), WS_MAX_BUFFERED_BYTES: 'lots' },
    });
    expect(await service.exited).toBe(1);
    const fatal = service.logs().find((line) => line['level'] === 'fatal');
    expect(fatal?.['msg']).toMatch(/KAFKA_BROKERS: required but not set[\s\S]*WS_MAX_BUFFERED_BYTES/);
  });
});
