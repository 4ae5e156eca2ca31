import { topics } from '@switchyard/events';
import type { Env } from '@switchyard/service-runtime';
import { waitFor, type InfraFixtures, type TestKey } from '@switchyard/testkit';
import { describe, expect, onTestFinished } from 'vitest';
import { test } from '@switchyard/testkit';
import {
  commandSucceeded,
  presenting,
  upgradeResponse,
  type ConnectOptions,
  customerUpserted,
  healthChanged,
  issueDeleted,
  issueUpserted,
  settle,
  startFanout,
  TestClient,
  type RunningFanout,
} from './harness.js';

type Fixtures = Pick<InfraFixtures, 'kafka' | 'brokers' | 'topics' | 'keys'>;

/** The HTTP status an upgrade request got instead of a WebSocket, or 101 when it was accepted. */
async function upgradeStatus(url: string, key?: TestKey, options: ConnectOptions = {}): Promise<number> {
  const { via, ...clientOptions } = options;
  const answer = await upgradeResponse(url, key === undefined ? { protocols: [], options: clientOptions } : presenting(key, via, clientOptions));
  return answer.status;
}

/** Starts the service in-process on this test's topics and stops it when the test ends. */
async function fanout({ kafka, brokers, topics: t, keys }: Fixtures, env: Env = {}): Promise<RunningFanout> {
  const running = await startFanout({ kafka, brokers, names: t.names, keys, env });
  onTestFinished(() => running.stop());
  return running;
}

async function connect(url: string, key: TestKey, options?: ConnectOptions): Promise<TestClient> {
  const client = await TestClient.connect(url, key, options);
  onTestFinished(() => client.socket.terminate());
  return client;
}

describe('ws-fanout stream', () => {
  test('a subscriber gets exactly the matching events produced after ready, and nothing older', async ({ kafka, brokers, topics: t, producer, keys }) => {
    const old = issueUpserted(1);
    await producer.send(topics.entities, [old]);

    const service = await fanout({ kafka, brokers, topics: t, keys });
    const client = await connect(service.wsUrl, service.key);
    await client.subscribe('issues', { types: ['github.issue.*'] });
    await client.subscribe('one', { subjects: ['github:issue:acme/widgets#2'] });
    await client.subscribe('request', { correlationId: 'req-42' });
    await client.subscribe('results', { types: ['switchyard.command.*'] });

    const second = issueUpserted(2, { correlationId: 'req-42' });
    const deleted = issueDeleted(3);
    const result = commandSucceeded('cmd-1', 'req-42');
    await producer.send(topics.entities, [customerUpserted('cus_1'), second, deleted]);
    await producer.send(topics.apiHealth, [healthChanged('github')]);
    await producer.send(topics.commandResults, [result]);

    await client.waitForEvents(6);
    await settle();
    expect(client.eventIds('issues').sort()).toEqual([second.id, deleted.id].sort());
    expect(client.eventIds('one')).toEqual([second.id]);
    expect(client.eventIds('request').sort()).toEqual([second.id, result.id].sort());
    expect(client.eventIds('results')).toEqual([result.id]);
    expect(client.eventIds()).not.toContain(old.id);
    expect(client.events()).toHaveLength(6);
    // The frame carries the whole CloudEvent.
    expect(client.events('one')[0]).toEqual(JSON.parse(JSON.stringify(second)));
  });

  test('events produced while the consumer joins are delivered: it starts at the offsets captured at start', async ({
    kafka,
    brokers,
    topics: t,
    producer,
    keys,
  }) => {
    const beforeCapture = issueUpserted(1);
    const duringJoin = issueUpserted(2);
    let client: TestClient | undefined;
    const service = await startFanout({
      kafka,
      brokers,
      names: t.names,
      keys,
      onListening: async (wsUrl, key) => {
        await producer.send(topics.entities, [beforeCapture]);
        client = await connect(wsUrl, key);
        await client.subscribe('all');
      },
      // Kafka's own "latest" would be resolved after this, at the first fetch, and skip the event.
      afterCapture: async () => {
        await producer.send(topics.entities, [duringJoin]);
      },
    });
    onTestFinished(() => service.stop());
    const afterReady = issueUpserted(3);
    await producer.send(topics.entities, [afterReady]);
    await client!.waitForEvents(2);
    await settle();
    expect(client!.eventIds().sort()).toEqual([duringJoin.id, afterReady.id].sort());
  });

  test('two clients with different filters each get theirs, one frame per matching subscription', async ({ kafka, brokers, topics: t, producer, keys }) => {
    const service = await fanout({ kafka, brokers, topics: t, keys });
    const issues = await connect(service.wsUrl, service.key);
    const health = await connect(service.wsUrl, service.key);
    await issues.subscribe('a', { types: ['github.issue.upserted'] });
    await issues.subscribe('b', { types: ['github.**'] });
    await health.subscribe('h', { types: ['switchyard.api.health_changed'] });

    const issue = issueUpserted(7);
    const down = healthChanged('stripe');
    await producer.send(topics.entities, [issue]);
    await producer.send(topics.apiHealth, [down]);

    await issues.waitForEvents(2);
    await health.waitForEvents(1);
    await settle();
    expect(issues.frames.filter((frame) => frame.op === 'event').map((frame) => [frame.subscription, frame.event?.id])).toEqual([
      ['a', issue.id],
      ['b', issue.id],
    ]);
    expect(health.eventIds()).toEqual([down.id]);
  });

  test('every instance delivers every event (each is its own consumer group)', async ({ kafka, brokers, topics: t, producer, keys }) => {
    const first = await fanout({ kafka, brokers, topics: t, keys });
    const second = await fanout({ kafka, brokers, topics: t, keys });
    expect(first.groupId).not.toBe(second.groupId);
    expect(first.groupId.startsWith(`${t.prefix}ws-fanout.`)).toBe(true);
    const a = await connect(first.wsUrl, first.key);
    const b = await connect(second.wsUrl, second.key);
    await a.subscribe('s', { types: ['**'] });
    await b.subscribe('s', { types: ['**'] });
    const events = [issueUpserted(1), issueUpserted(2), issueUpserted(3), issueUpserted(4)];
    await producer.send(topics.entities, events);
    await a.waitForEvents(4);
    await b.waitForEvents(4);
    expect(a.eventIds().sort()).toEqual(events.map((event) => event.id).sort());
    expect(b.eventIds().sort()).toEqual(events.map((event) => event.id).sort());
  });

  test('unsubscribe stops delivery on that subscription only', async ({ kafka, brokers, topics: t, producer, keys }) => {
    const service = await fanout({ kafka, brokers, topics: t, keys });
    const client = await connect(service.wsUrl, service.key);
    await client.subscribe('gone', { types: ['github.issue.*'] });
    await client.subscribe('kept', { types: ['github.issue.*'] });
    const before = issueUpserted(1);
    await producer.send(topics.entities, [before]);
    await client.waitForEvents(1, 'gone');

    client.send({ op: 'unsubscribe', id: 'gone' });
    await client.waitForFrame((frame) => frame.op === 'unsubscribed' && frame.id === 'gone');
    client.send({ op: 'unsubscribe', id: 'never-opened' });
    await client.waitForFrame((frame) => frame.op === 'unsubscribed' && frame.id === 'never-opened');
    const after = issueUpserted(2);
    await producer.send(topics.entities, [after]);
    await client.waitForEvents(2, 'kept');
    await settle();
    expect(client.eventIds('gone')).toEqual([before.id]);
    expect(client.eventIds('kept')).toEqual([before.id, after.id]);
    expect(await service.metric('switchyard_ws_subscriptions')).toBe(1);
  });

  test('?types= subscribes at connect as "default"; a bad pattern there closes 4400 naming it', async ({ kafka, brokers, topics: t, producer, keys }) => {
    const service = await fanout({ kafka, brokers, topics: t, keys });
    const client = await connect(`${service.wsUrl}?types=github.issue.*,switchyard.command.*`, service.key);
    await client.waitForFrame((frame) => frame.op === 'subscribed' && frame.id === 'default');
    const issue = issueUpserted(5);
    const result = commandSucceeded('cmd-9');
    await producer.send(topics.entities, [issue, customerUpserted('cus_2')]);
    await producer.send(topics.commandResults, [result]);
    await producer.send(topics.apiHealth, [healthChanged('slack')]);
    await client.waitForEvents(2, 'default');
    await settle();
    expect(client.eventIds('default').sort()).toEqual([issue.id, result.id].sort());
    expect(client.events()).toHaveLength(2);

    const bad = await connect(`${service.wsUrl}?types=github.issue.*,GitHub.Issue`, service.key);
    expect(await bad.closed).toMatchObject({ code: 4400, reason: expect.stringMatching(/^types\[1\]: /) });
  });

  test('an invalid message closes that client with 4400 naming the field; another client keeps receiving', async ({ kafka, brokers, topics: t, producer, keys }) => {
    const service = await fanout({ kafka, brokers, topics: t, keys });
    const bystander = await connect(service.wsUrl, service.key);
    await bystander.subscribe('all', {});
    const offender = await connect(service.wsUrl, service.key);
    offender.send({ op: 'subscribe', id: 's1', filter: { types: ['github.issue.up*'] } });
    const closed = await offender.closed;
    expect(closed.code).toBe(4400);
    expect(closed.reason).toMatch(/^filter\.types\[0\]: /);
    expect(Buffer.byteLength(closed.reason)).toBeLessThanOrEqual(123);
    expect(offender.frames).toContainEqual(
      expect.objectContaining({ op: 'error', code: 'WS_INVALID_MESSAGE', field: 'filter.types[0]' }),
    );

    const typo = await connect(service.wsUrl, service.key);
    typo.send({ op: 'subscribe', id: 's1', fliter: {} });
    expect(await typo.closed).toMatchObject({ code: 4400, reason: 'fliter: unknown field' });

    const event = issueUpserted(11);
    await producer.send(topics.entities, [event]);
    await bystander.waitForEvents(1);
    expect(bystander.eventIds()).toEqual([event.id]);
    expect(bystander.isClosed).toBe(false);
    expect(await service.metric('switchyard_ws_connections_closed_total', { reason: 'invalid_message' })).toBe(2);
  });

  test('a non-JSON or binary frame closes with 1007', async ({ kafka, brokers, topics: t, keys }) => {
    const service = await fanout({ kafka, brokers, topics: t, keys });
    const text = await connect(service.wsUrl, service.key);
    text.socket.send('hello');
    expect(await text.closed).toMatchObject({ code: 1007, reason: expect.stringMatching(/^not JSON/) });

    const binary = await connect(service.wsUrl, service.key);
    binary.socket.send(Buffer.from(JSON.stringify({ op: 'ping' })), { binary: true });
    expect(await binary.closed).toMatchObject({ code: 1007, reason: expect.stringMatching(/binary/) });

    const fine = await connect(service.wsUrl, service.key);
    fine.send({ op: 'ping' });
    await fine.waitForFrame((frame) => frame.op === 'pong');
    expect(fine.isClosed).toBe(false);
  });

  test('a message over WS_MAX_MESSAGE_BYTES closes with 1009', async ({ kafka, brokers, topics: t, keys }) => {
    const service = await fanout({ kafka, brokers, topics: t, keys }, { WS_MAX_MESSAGE_BYTES: '1024' });
    const client = await connect(service.wsUrl, service.key);
    const subjects = Array.from({ length: 100 }, (_, index) => `github:issue:acme/widgets#${index}`);
    client.send({ op: 'subscribe', id: 's1', filter: { subjects } });
    expect(await client.closed).toMatchObject({ code: 1009 });
    await waitFor(async () => (await service.metric('switchyard_ws_connections_closed_total', { reason: 'message_too_big' })) === 1, {
      what: 'the close to be counted',
    });
  });

  test('a duplicate subscription id closes 4409; one subscription over the limit closes 4429', async ({ kafka, brokers, topics: t, keys }) => {
    const service = await fanout({ kafka, brokers, topics: t, keys }, { WS_MAX_SUBSCRIPTIONS: '2' });
    const duplicate = await connect(service.wsUrl, service.key);
    await duplicate.subscribe('s1', {});
    duplicate.send({ op: 'subscribe', id: 's1', filter: {} });
    expect(await duplicate.closed).toMatchObject({ code: 4409, reason: 'id: subscription "s1" is already open' });

    const greedy = await connect(service.wsUrl, service.key);
    await greedy.subscribe('s1');
    await greedy.subscribe('s2');
    greedy.send({ op: 'subscribe', id: 's3' });
    expect(await greedy.closed).toMatchObject({ code: 4429 });
    await waitFor(async () => (await service.metric('switchyard_ws_subscriptions')) === 0, { what: 'subscriptions released' });
  });

  test('a client too slow to drain is closed with 4008 while a normal client receives everything', async ({ kafka, brokers, topics: t, producer, keys }) => {
    const service = await fanout({ kafka, brokers, topics: t, keys }, { WS_MAX_BUFFERED_BYTES: String(256 * 1024), WS_CLOSE_TIMEOUT_MS: '20000' });
    const normal = await connect(service.wsUrl, service.key);
    await normal.subscribe('all', { types: ['github.issue.*'] });
    const slow = await connect(service.wsUrl, service.key);
    await slow.subscribe('all', { types: ['github.issue.*'] });
    slow.socket.pause(); // stops reading: the kernel buffers fill, then the server's

    // 60 kB events until the server gives up on the slow client (kernel socket buffers take several MB first).
    const body = 'x'.repeat(60_000);
    const produced: string[] = [];
    let number = 0;
    while ((await service.metric('switchyard_ws_connections_closed_total', { reason: 'slow_consumer' })) !== 1) {
      if (produced.length >= 1000) throw new Error(`the slow client was never closed (${produced.length} events of 60 kB sent)`);
      const batch = Array.from({ length: 20 }, () => issueUpserted((number += 1), { body }));
      await producer.send(topics.entities, batch);
      produced.push(...batch.map((event) => event.id));
    }
    slow.socket.resume(); // read what was queued, then the close frame
    expect(await slow.closed).toMatchObject({ code: 4008 });
    expect(slow.events().length).toBeLessThan(produced.length);

    await normal.waitForEvents(produced.length, 'all', { timeoutMs: 30000 });
    expect(normal.eventIds('all').sort()).toEqual([...produced].sort());
    expect(normal.isClosed).toBe(false);
  });

  test('a client that stops answering pings is dropped; one that answers stays', async ({ kafka, brokers, topics: t, producer, keys }) => {
    const service = await fanout({ kafka, brokers, topics: t, keys }, { WS_PING_INTERVAL_MS: '100' });
    const silent = await connect(service.wsUrl, service.key, { autoPong: false });
    const alive = await connect(service.wsUrl, service.key);
    await alive.subscribe('all');
    expect(await silent.closed).toMatchObject({ code: 1006 });
    expect(await service.metric('switchyard_ws_connections_closed_total', { reason: 'heartbeat_timeout' })).toBe(1);
    await settle(400);
    const event = issueUpserted(1);
    await producer.send(topics.entities, [event]);
    await alive.waitForEvents(1);
    expect(alive.isClosed).toBe(false);
  });

  test('a record that does not decode is skipped and counted; the stream goes on', async ({ kafka, brokers, topics: t, producer, keys }) => {
    const service = await fanout({ kafka, brokers, topics: t, keys });
    const client = await connect(service.wsUrl, service.key);
    await client.subscribe('all');
    await producer.sendRaw([
      {
        topic: t.name(topics.entities),
        messages: [
          { key: 'github:issue:acme/widgets#1', value: 'not json', headers: {} },
          { key: 'github:issue:acme/widgets#1', value: JSON.stringify({ specversion: '1.0', type: 'github.issue.upserted' }), headers: {} },
        ],
      },
    ]);
    const good = issueUpserted(1);
    await producer.send(topics.entities, [good]);
    await client.waitForEvents(1);
    await settle();
    expect(client.eventIds()).toEqual([good.id]);
    expect(await service.metric('switchyard_ws_decode_failures_total', { topic: 'entities', code: 'EVT_NOT_JSON' })).toBe(1);
    expect(await service.metric('switchyard_ws_decode_failures_total', { topic: 'entities', code: 'EVT_INVALID_ENVELOPE' })).toBe(1);
    expect(await service.metric('switchyard_ws_events_received_total', { topic: 'entities' })).toBe(1);
    expect(await service.metric('switchyard_ws_frames_sent_total', { op: 'event' })).toBe(1);
    expect(await service.metric('switchyard_ws_delivery_delay_seconds_count')).toBe(1);
  });

  test('refuses connections over WS_MAX_CONNECTIONS with 1013, and answers HTTP on the edges', async ({ kafka, brokers, topics: t, keys }) => {
    const service = await fanout({ kafka, brokers, topics: t, keys }, { WS_MAX_CONNECTIONS: '1' });
    const first = await connect(service.wsUrl, service.key);
    const second = await connect(service.wsUrl, service.key);
    expect(await second.closed).toMatchObject({ code: 1013 });
    expect(first.isClosed).toBe(false);
    expect(await service.metric('switchyard_ws_connections')).toBe(1);

    const plain = await fetch(`${service.url}/v1/stream`, { headers: service.key.headers });
    expect(plain.status).toBe(426);
    expect(await plain.json()).toMatchObject({ error: { code: 'WS_UPGRADE_REQUIRED' } });
    const anonymous = await fetch(`${service.url}/v1/stream`);
    expect(anonymous.status).toBe(401);
    expect(await anonymous.json()).toMatchObject({ error: { code: 'AUTH_MISSING' } });
    expect(await upgradeStatus(service.wsUrl.replace('/v1/stream', '/v1/other'), service.key)).toBe(404);
    const ready = await (await fetch(`${service.url}/readyz`)).json();
    expect(ready).toMatchObject({ status: 'ready', checks: { kafka: { ok: true }, 'api keys': { ok: true }, consumer: { ok: true } } });
  });

  test('only allowed origins may connect when WS_ALLOWED_ORIGINS is set', async ({ kafka, brokers, topics: t, keys }) => {
    const service = await fanout({ kafka, brokers, topics: t, keys }, { WS_ALLOWED_ORIGINS: 'https://app.example.com' });
    const allowed = await connect(service.wsUrl, service.key, { origin: 'https://app.example.com' });
    expect(allowed.isClosed).toBe(false);
    expect(await upgradeStatus(service.wsUrl, service.key, { origin: 'https://evil.example.com' })).toBe(403);
    // Non-browser clients send no Origin and are not affected.
    expect(await upgradeStatus(service.wsUrl, service.key)).toBe(101);
  });

  test('shutdown closes clients with 1001 and refuses new upgrades with 503', async ({ kafka, brokers, topics: t, keys }) => {
    const service = await startFanout({ kafka, brokers, names: t.names, keys });
    const client = await connect(service.wsUrl, service.key);
    await client.subscribe('all');
    const closing = service.hub.closeAll();
    expect(await client.closed).toMatchObject({ code: 1001, reason: 'server shutting down' });
    await closing;
    expect(await upgradeStatus(service.wsUrl, service.key)).toBe(503);
    await service.stop();
  });
});
