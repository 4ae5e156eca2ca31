import { connect as tcpConnect } from 'node:net';
import { mintKey } from '@switchyard/auth';
import { topics } from '@switchyard/events';
import type { Env } from '@switchyard/service-runtime';
import { type InfraFixtures, type TestKey } from '@switchyard/testkit';
import fc from 'fast-check';
import { describe, expect, onTestFinished } from 'vitest';
import { test } from '@switchyard/testkit';
import {
  commandSucceeded,
  customerUpserted,
  healthChanged,
  issueDeleted,
  issueUpserted,
  presenting,
  settle,
  startFanout,
  TestClient,
  upgradeResponse,
  type ConnectOptions,
  type RunningFanout,
  type UpgradeAnswer,
} from './harness.js';

type Fixtures = Pick<InfraFixtures, 'kafka' | 'brokers' | 'topics' | 'keys'>;

async function fanout({ kafka, brokers, topics: t, keys }: Fixtures, env: Env = {}): Promise<RunningFanout> {
  const running = await startFanout({ kafka, brokers, names: t.names, keys, env });
  onTestFinished(() => running.stop());
  return running;
}

async function connect(url: string, key: TestKey | string, options?: ConnectOptions): Promise<TestClient> {
  const client = await TestClient.connect(url, key, options);
  onTestFinished(() => client.socket.terminate());
  return client;
}

/** An upgrade with exactly these request headers (ws's own key and version headers are added). */
function upgradeWith(url: string, headers: Record<string, string>): Promise<UpgradeAnswer> {
  return upgradeResponse(url, { protocols: [], options: { headers } });
}

/** The promise's value, or a failure naming `what` once `ms` have passed. */
async function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not happen within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** The error code of a refusal's JSON body. */
function codeOf(answer: UpgradeAnswer): string | undefined {
  return (JSON.parse(answer.body) as { error?: { code?: string } }).error?.code;
}

/** A key of the right shape that no api-keys record knows. */
function unknownKey(): string {
  return mintKey().key;
}

interface RawAnswer {
  readonly status: number;
  readonly head: string;
  readonly body: string;
}

/**
 * Sends an upgrade request byte for byte (no client library checks or rewrites its headers) and reads the whole
 * answer until the server closes the connection.
 */
function rawUpgrade(port: number, headers: readonly (readonly [string, string])[]): Promise<RawAnswer> {
  return new Promise((resolve, reject) => {
    const socket = tcpConnect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    socket.on('data', (chunk) => chunks.push(chunk));
    socket.on('error', reject);
    socket.on('close', () => {
      const text = Buffer.concat(chunks).toString('latin1');
      const split = text.indexOf('\r\n\r\n');
      const head = split < 0 ? text : text.slice(0, split);
      const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(head)?.[1] ?? 0);
      resolve({ status, head, body: split < 0 ? '' : text.slice(split + 4) });
    });
    socket.setTimeout(5000, () => socket.destroy(new Error('no answer to the upgrade within 5 s')));
    const lines = [
      'GET /v1/stream HTTP/1.1',
      `Host: 127.0.0.1:${port}`,
      'Upgrade: websocket',
      'Connection: Upgrade',
      'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==',
      'Sec-WebSocket-Version: 13',
      ...headers.map(([name, value]) => `${name}: ${value}`),
    ];
    socket.write(`${lines.join('\r\n')}\r\n\r\n`, 'latin1');
  });
}

describe('ws-fanout authentication', () => {
  test('refuses upgrades with the exact status and code for each credential problem, never repeating the key', async ({
    kafka,
    brokers,
    topics: t,
    keys,
  }) => {
    const revoked = await keys.create(['stream:**'], { name: 'revoked' });
    await keys.revoke(revoked);
    const commandsOnly = await keys.create(['commands:send:github.issue.*', 'commands:read'], { name: 'no stream scope' });
    const known = await keys.create(['stream:**'], { name: 'known' });
    const service = await fanout({ kafka, brokers, topics: t, keys });
    const wrongSecret = `${known.keyId}_${'A'.repeat(43)}`;
    const unknown = unknownKey();

    const cases: { what: string; answer: Promise<UpgradeAnswer>; status: number; code: string; secret?: string }[] = [
      { what: 'no credentials', answer: upgradeResponse(service.wsUrl), status: 401, code: 'AUTH_MISSING' },
      { what: 'not a Bearer header', answer: upgradeWith(service.wsUrl, { authorization: `Basic ${Buffer.from('u:p').toString('base64')}` }), status: 401, code: 'AUTH_MALFORMED' },
      { what: 'Bearer without a key', answer: upgradeWith(service.wsUrl, { authorization: 'Bearer' }), status: 401, code: 'AUTH_MALFORMED' },
      { what: 'a key of the wrong shape', answer: upgradeWith(service.wsUrl, { authorization: `Bearer ${known.key}x` }), status: 401, code: 'AUTH_MALFORMED', secret: known.key },
      { what: 'an unknown key', answer: upgradeResponse(service.wsUrl, presenting(unknown)), status: 401, code: 'AUTH_KEY_UNKNOWN', secret: unknown },
      { what: 'a known id with a wrong secret', answer: upgradeResponse(service.wsUrl, presenting(wrongSecret)), status: 401, code: 'AUTH_KEY_UNKNOWN', secret: wrongSecret },
      { what: 'an unknown key as a subprotocol', answer: upgradeResponse(service.wsUrl, presenting(unknown, 'subprotocol')), status: 401, code: 'AUTH_KEY_UNKNOWN', secret: unknown },
      { what: 'a revoked key', answer: upgradeResponse(service.wsUrl, presenting(revoked)), status: 401, code: 'AUTH_KEY_REVOKED', secret: revoked.key },
      { what: 'a revoked key as a subprotocol', answer: upgradeResponse(service.wsUrl, presenting(revoked, 'subprotocol')), status: 401, code: 'AUTH_KEY_REVOKED', secret: revoked.key },
      { what: 'a key without a stream: scope', answer: upgradeResponse(service.wsUrl, presenting(commandsOnly)), status: 403, code: 'AUTH_SCOPE_MISSING', secret: commandsOnly.key },
      {
        what: 'a bearer subprotocol without switchyard.v1',
        answer: upgradeResponse(service.wsUrl, { protocols: [`switchyard.bearer.${known.key}`], options: {} }),
        status: 400,
        code: 'WS_SUBPROTOCOL_REQUIRED',
        secret: known.key,
      },
    ];
    for (const { what, answer: pending, status, code, secret } of cases) {
      const answer = await pending;
      expect({ what, status: answer.status, code: codeOf(answer) }).toEqual({ what, status, code });
      if (status === 401) expect(answer.headers['www-authenticate'], what).toMatch(/^Bearer realm="switchyard"/);
      else expect(answer.headers['www-authenticate'], what).toBeUndefined();
      if (secret !== undefined) {
        // Neither the key nor its secret part (after the id) comes back.
        expect(answer.body, what).not.toContain(secret.slice(20));
        expect(JSON.stringify(answer.headers), what).not.toContain(secret.slice(20));
      }
    }
    const scope = await upgradeResponse(service.wsUrl, presenting(commandsOnly));
    expect(JSON.parse(scope.body)).toEqual({
      error: { code: 'AUTH_SCOPE_MISSING', message: `key ${commandsOnly.keyId} lacks the scope stream:<type pattern>`, retriable: false },
    });
    expect(await service.metric('switchyard_ws_connections_opened_total')).toBe(0);

    // The plain GET of the same path is guarded alike.
    const plain = await fetch(`${service.url}/v1/stream`, { headers: commandsOnly.headers });
    expect(plain.status).toBe(403);
    expect(await plain.json()).toMatchObject({ error: { code: 'AUTH_SCOPE_MISSING' } });
  });

  test('accepts a key with a stream: scope in the Authorization header or as a subprotocol, selecting switchyard.v1', async ({
    kafka,
    brokers,
    topics: t,
    producer,
    keys,
  }) => {
    const key = await keys.create(['stream:github.issue.*']);
    const service = await fanout({ kafka, brokers, topics: t, keys });

    // Node: the header, with or without offering the subprotocol.
    expect(await upgradeResponse(service.wsUrl, presenting(key))).toMatchObject({ status: 101, protocol: '' });
    const { options } = presenting(key);
    expect(await upgradeResponse(service.wsUrl, { protocols: ['switchyard.v1'], options })).toMatchObject({ status: 101, protocol: 'switchyard.v1' });
    // Browser: both subprotocols; the server selects switchyard.v1, never the bearer entry.
    expect(await upgradeResponse(service.wsUrl, presenting(key, 'subprotocol'))).toMatchObject({ status: 101, protocol: 'switchyard.v1' });
    expect(
      await upgradeResponse(service.wsUrl, { protocols: [`switchyard.bearer.${key.key}`, 'switchyard.v1'], options: {} }),
    ).toMatchObject({ status: 101, protocol: 'switchyard.v1' });

    const node = await connect(`${service.wsUrl}?types=github.issue.*`, key);
    const browser = await connect(`${service.wsUrl}?types=github.issue.*`, key, { via: 'subprotocol' });
    expect(browser.socket.protocol).toBe('switchyard.v1');
    await node.waitForFrame((frame) => frame.op === 'subscribed' && frame.id === 'default');
    await browser.waitForFrame((frame) => frame.op === 'subscribed' && frame.id === 'default');
    const event = issueUpserted(1);
    await producer.send(topics.entities, [event]);
    await node.waitForEvents(1);
    await browser.waitForEvents(1);
    expect(node.eventIds()).toEqual([event.id]);
    expect(browser.eventIds()).toEqual([event.id]);
  });

  test('while the api keys are being read, upgrades get 503 AUTH_KEYS_UNAVAILABLE and /readyz says why', async ({
    kafka,
    brokers,
    topics: t,
    keys,
  }) => {
    const key = await keys.create(['stream:**']);
    let answer: UpgradeAnswer | undefined;
    let readiness: unknown;
    const service = await startFanout({
      kafka,
      brokers,
      names: t.names,
      keys,
      beforeKeys: async (wsUrl) => {
        answer = await upgradeResponse(wsUrl, presenting(key));
        readiness = await (await fetch(wsUrl.replace('ws://', 'http://').replace('/v1/stream', '/readyz'))).json();
      },
    });
    onTestFinished(() => service.stop());
    expect(answer).toMatchObject({ status: 503 });
    expect(JSON.parse(answer!.body)).toEqual({
      error: { code: 'AUTH_KEYS_UNAVAILABLE', message: 'api keys are not loaded yet; retry shortly', retriable: true },
    });
    expect(readiness).toMatchObject({ status: 'not_ready', checks: { 'api keys': { ok: false } } });
    // Once read, the same key is let in.
    expect(await upgradeResponse(service.wsUrl, presenting(key))).toMatchObject({ status: 101 });
  });

  test('a subscription with a type outside the key\'s stream: scopes is refused with 4403 naming it', async ({ kafka, brokers, topics: t, keys }) => {
    const key = await keys.create(['stream:github.issue.*', 'stream:switchyard.api.health_changed']);
    const service = await fanout({ kafka, brokers, topics: t, keys });

    const fine = await connect(service.wsUrl, key);
    await fine.subscribe('exact', { types: ['github.issue.upserted'] });
    await fine.subscribe('pattern', { types: ['github.issue.*', 'switchyard.api.health_changed'] });
    await fine.subscribe('everything');

    const results = await connect(service.wsUrl, key);
    results.send({ op: 'subscribe', id: 's1', filter: { types: ['github.issue.*', 'switchyard.command.*'] } });
    const closed = await results.closed;
    expect(closed).toEqual({ code: 4403, reason: `filter.types[1]: switchyard.command.* is outside the stream: scopes of key ${key.keyId}` });
    expect(results.frames).toContainEqual({ op: 'error', code: 'WS_SCOPE_MISSING', message: closed.reason, field: 'filter.types[1]' });

    // A pattern wider than the scope is outside it, even though some of what it matches is inside.
    const wider = await connect(service.wsUrl, key);
    wider.send({ op: 'subscribe', id: 's1', filter: { types: ['github.**'] } });
    expect(await wider.closed).toMatchObject({ code: 4403, reason: expect.stringMatching(/^filter\.types\[0\]: github\.\*\* is outside/) });

    const query = await connect(`${service.wsUrl}?types=stripe.customer.upserted`, key);
    expect(await query.closed).toMatchObject({ code: 4403, reason: expect.stringMatching(/^types\[0\]: stripe\.customer\.upserted is outside/) });

    expect(fine.isClosed).toBe(false);
    expect(await service.metric('switchyard_ws_connections_closed_total', { reason: 'scope_missing' })).toBe(3);
  });

  test('a key with stream:github.issue.* subscribed to everything gets GitHub issue events and no command results', async ({
    kafka,
    brokers,
    topics: t,
    producer,
    keys,
  }) => {
    const narrow = await keys.create(['stream:github.issue.*']);
    const admin = await keys.create(['admin']);
    const service = await fanout({ kafka, brokers, topics: t, keys });
    const limited = await connect(service.wsUrl, narrow);
    await limited.subscribe('all');
    await limited.subscribe('request', { correlationId: 'req-7' });
    await limited.subscribe('subject', { subjects: ['cmd-7', 'github:issue:acme/widgets#1'] });
    const everything = await connect(service.wsUrl, admin);
    await everything.subscribe('all');

    const upserted = issueUpserted(1, { correlationId: 'req-7' });
    const deleted = issueDeleted(2);
    const customer = customerUpserted('cus_7');
    const result = commandSucceeded('cmd-7', 'req-7');
    const health = healthChanged('github');
    await producer.send(topics.entities, [upserted, customer, deleted]);
    await producer.send(topics.commandResults, [result]);
    await producer.send(topics.apiHealth, [health]);

    // Admin keys see everything: proof all five events reached the service.
    await everything.waitForEvents(5);
    await limited.waitForEvents(2, 'all');
    await settle();
    expect(everything.eventIds().sort()).toEqual([upserted.id, deleted.id, customer.id, result.id, health.id].sort());
    expect(limited.eventIds('all').sort()).toEqual([upserted.id, deleted.id].sort());
    // Narrower filters are limited the same way: the command result matches them but is not the key's to see.
    expect(limited.eventIds('request')).toEqual([upserted.id]);
    expect(limited.eventIds('subject')).toEqual([upserted.id]);
    expect(limited.events().map((event) => event.type)).not.toContain('switchyard.command.succeeded');
  });

  test('revoking a key closes its open streams with 4401 within 1 s of the publish; other keys keep streaming', async ({
    kafka,
    brokers,
    topics: t,
    producer,
    keys,
  }) => {
    const doomed = await keys.create(['stream:**'], { name: 'doomed' });
    const other = await keys.create(['stream:**'], { name: 'other' });
    const service = await fanout({ kafka, brokers, topics: t, keys });
    const viaHeader = await connect(service.wsUrl, doomed);
    const viaSubprotocol = await connect(service.wsUrl, doomed, { via: 'subprotocol' });
    const bystander = await connect(service.wsUrl, other);
    for (const client of [viaHeader, viaSubprotocol, bystander]) await client.subscribe('all');

    const publishedAt = performance.now();
    await keys.revoke(doomed);
    const reason = `key ${doomed.keyId} was revoked`;
    expect(await within(viaHeader.closed, 3000, 'closing the header client')).toEqual({ code: 4401, reason });
    expect(await within(viaSubprotocol.closed, 3000, 'closing the subprotocol client')).toEqual({ code: 4401, reason });
    for (const client of [viaHeader, viaSubprotocol]) expect(client.closedAt! - publishedAt).toBeLessThan(1000);
    expect(await service.metric('switchyard_ws_connections_closed_total', { reason: 'key_revoked' })).toBe(2);

    const again = await upgradeResponse(service.wsUrl, presenting(doomed));
    expect({ status: again.status, code: codeOf(again) }).toEqual({ status: 401, code: 'AUTH_KEY_REVOKED' });
    const event = issueUpserted(3);
    await producer.send(topics.entities, [event]);
    await bystander.waitForEvents(1);
    expect(bystander.eventIds()).toEqual([event.id]);
    expect(bystander.isClosed).toBe(false);
  });

  test('any Authorization header or subprotocol list without a valid key gets 401 and a parseable refusal; the server keeps serving', async ({
    kafka,
    brokers,
    topics: t,
    producer,
    keys,
  }) => {
    const known = await keys.create(['stream:**']);
    const service = await fanout({ kafka, brokers, topics: t, keys });
    const port = Number(new URL(service.url).port);
    const printable = (maxLength: number) => fc.string({ maxLength });
    const token = fc.stringMatching(/^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,40}$/);
    const keyShaped = fc
      .tuple(fc.stringMatching(/^[0-9a-f]{16}$/), fc.stringMatching(/^[A-Za-z0-9_-]{43}$/))
      .map(([id, secret]) => `sy_${id}_${secret}`);
    const credential = fc.oneof(
      keyShaped,
      fc.constantFrom(`${known.key}x`, known.key.slice(0, -1), `${known.keyId}_${'A'.repeat(43)}`, '', 'sy_', known.keyId),
      printable(80),
    );
    const authorization = fc.oneof(
      printable(600),
      credential.map((text) => `Bearer ${text}`),
      credential.map((text) => `bearer  ${text}`),
      fc.constantFrom('Bearer', 'Bearer ', 'Basic dXNlcjpwYXNz', `Token ${known.key}`, `Bearer ${known.key} ${known.key}`),
    );
    const protocolEntry = fc.oneof(
      credential.map((text) => `switchyard.bearer.${text}`),
      fc.constantFrom('switchyard.v1', 'switchyard.bearer.', ' ', ''),
      token,
      printable(40),
    );
    const subprotocols = fc
      .tuple(fc.array(protocolEntry, { minLength: 1, maxLength: 4 }), fc.constantFrom(',', ', ', ' ,'))
      .map(([entries, separator]) => entries.join(separator));
    const request = fc.record({ authorization: fc.option(authorization, { nil: undefined }), protocols: fc.option(subprotocols, { nil: undefined }) });

    await fc.assert(
      fc.asyncProperty(request, async ({ authorization: header, protocols }) => {
        const headers: [string, string][] = [];
        if (header !== undefined) headers.push(['Authorization', header]);
        if (protocols !== undefined) headers.push(['Sec-WebSocket-Protocol', protocols]);
        const answer = await rawUpgrade(port, headers);
        expect(answer.status).toBe(401);
        expect(answer.head).toMatch(/\r\nWWW-Authenticate: Bearer realm="switchyard"/);
        const body = JSON.parse(answer.body) as { error: { code: string; retriable: boolean } };
        expect(['AUTH_MISSING', 'AUTH_MALFORMED', 'AUTH_KEY_UNKNOWN']).toContain(body.error.code);
        expect(body.error.retriable).toBe(false);
        // Whatever looked like a key's secret is not repeated.
        for (const secret of `${header ?? ''} ${protocols ?? ''}`.match(/sy_[0-9a-f]{16}_[A-Za-z0-9_-]{43}/g) ?? []) {
          expect(answer.body).not.toContain(secret.slice(20));
        }
      }),
      { numRuns: 300 },
    );

    expect(service.fatal).toEqual([]);
    expect(await service.metric('switchyard_ws_connections_opened_total')).toBe(0);
    const client = await connect(service.wsUrl, known);
    await client.subscribe('all');
    const event = issueUpserted(9);
    await producer.send(topics.entities, [event]);
    await client.waitForEvents(1);
    expect(client.eventIds()).toEqual([event.id]);
  });
});
