import { mintKey } from '@switchyard/auth';
import { topics as catalog, type TopicSpec } from '@switchyard/events';
import { findComponent, localUrl, SERVICE_NAMES, type ServiceName } from '@switchyard/infra';
import { KafkaAdmin, type Kafka, type TopicNames } from '@switchyard/kafka';
import { EventCollector, test, testLogger, waitFor, type TestKey } from '@switchyard/testkit';
import { describe, expect, onTestFinished } from 'vitest';
import { assertBuilt } from './support/built.js';
import { StackProcesses, testStack } from './support/stack.js';
import { StreamClient } from './support/stream.js';

/**
 * API keys across the whole stack, every service a process as `npm start` runs it:
 * - every route of every service — read from the route table each service logs when it is ready, so a route added
 *   later is in the matrix without anyone listing it — and the WebSocket upgrade, against no key, a malformed key,
 *   an unknown key, a revoked key, a valid key without the route's scope and one with it;
 * - a key revoked while it streams and sends commands is refused by every service within a second, and its
 *   stream is closed with 4401;
 * - no log line of any process and no record on any topic holds any key's secret or the GitHub token.
 */

type Requirement = 'admin' | 'commands:send' | 'commands:read' | 'stream' | 'health:read';

interface LoggedRoute {
  readonly method: string;
  readonly url: string;
  readonly auth: Requirement | undefined;
}

/** Every non-admin scope: a key with all of them but one family lacks exactly that family's requirement. */
const FAMILIES: Record<Exclude<Requirement, 'admin'>, string[]> = {
  'commands:send': ['commands:send:**'],
  'commands:read': ['commands:read', 'commands:read:all'],
  stream: ['stream:**'],
  'health:read': ['health:read'],
};
const EVERY_NON_ADMIN = Object.values(FAMILIES).flat();

interface Example {
  /** The path to call (the route's parameters filled in). */
  readonly path: (ids: Ids) => string;
  readonly body?: unknown;
  /** What the request gets with a key that has the scope. */
  readonly status: number;
  readonly code?: string;
}

interface Ids {
  readonly adminKeyId: string;
  readonly disposableKeyId: string;
}

const create = { type: 'github.issue.create', input: { owner: 'acme', repo: 'widgets', title: 'matrix' } };

/** A request per route, for the "with the scope" column; a route without one here fails the test. */
const EXAMPLES: Record<string, Example> = {
  'api-gateway-adapter POST /v1/commands': { path: () => '/v1/commands', body: create, status: 202 },
  'api-gateway-adapter POST /v1/commands::batch': { path: () => '/v1/commands:batch', body: { commands: [create] }, status: 200 },
  'api-gateway-adapter GET /v1/commands/:id': { path: () => '/v1/commands/01a2b3c4-0000-7000-8000-000000000000', status: 404, code: 'AGW_COMMAND_NOT_FOUND' },
  'api-gateway-adapter POST /v1/keys': { path: () => '/v1/keys', body: { name: 'made in the matrix', scopes: ['health:read'] }, status: 201 },
  'api-gateway-adapter GET /v1/keys': { path: () => '/v1/keys', status: 200 },
  'api-gateway-adapter GET /v1/keys/:id': { path: (ids) => `/v1/keys/${ids.adminKeyId}`, status: 200 },
  'api-gateway-adapter DELETE /v1/keys/:id': { path: (ids) => `/v1/keys/${ids.disposableKeyId}`, status: 200 },
  'sync-worker GET /v1/positions': { path: () => '/v1/positions', status: 200 },
  'health-monitor GET /v1/health': { path: () => '/v1/health', status: 200 },
  'ws-fanout GET /v1/stream': { path: () => '/v1/stream', status: 426, code: 'WS_UPGRADE_REQUIRED' },
};

interface Credential {
  readonly name: string;
  /** The Authorization header, or none. */
  readonly header: (requirement: Requirement) => string | undefined;
  readonly expect: (example: Example) => { status: number; code?: string };
}

function routeTables(processes: StackProcesses): Map<ServiceName, LoggedRoute[]> {
  const tables = new Map<ServiceName, LoggedRoute[]>();
  for (const service of SERVICE_NAMES) {
    const line = processes.get(service).logs().find((entry) => entry['msg'] === 'routes');
    if (line === undefined) throw new Error(`${service} logged no route table`);
    tables.set(service, line['routes'] as LoggedRoute[]);
  }
  return tables;
}

async function request(url: string, method: string, authorization: string | undefined, body?: unknown) {
  const response = await fetch(url, {
    method,
    headers: { ...(authorization === undefined ? {} : { authorization }), ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await response.text();
  return { status: response.status, wwwAuthenticate: response.headers.get('www-authenticate'), body: text, code: (JSON.parse(text) as { error?: { code?: string } }).error?.code };
}

/** The upgrade of GET /v1/stream with an Authorization header (or none): 101, or the refusal's status and code. */
async function upgrade(url: string, authorization: string | undefined): Promise<{ status: number; code?: string; wwwAuthenticate?: string }> {
  const answer = await StreamClient.upgrade(url, authorization === undefined ? {} : { authorization });
  const code = (answer.body as { error?: { code?: string } } | undefined)?.error?.code;
  return {
    status: answer.status,
    ...(code === undefined ? {} : { code }),
    ...(answer.wwwAuthenticate === undefined ? {} : { wwwAuthenticate: answer.wwwAuthenticate }),
  };
}

/** Every record now on every topic of the catalog, as text (key, value, headers). */
async function everyRecord(kafka: Kafka, names: TopicNames): Promise<string[]> {
  const admin = new KafkaAdmin(kafka, names, testLogger);
  await admin.connect();
  const texts: string[] = [];
  try {
    for (const spec of Object.values(catalog) as TopicSpec[]) {
      const offsets = await admin.partitionOffsets(names.name(spec));
      const total = offsets.reduce((sum, { high, low }) => sum + Number(high) - Number(low), 0);
      const collector = await new EventCollector(kafka, names, spec, testLogger).start();
      await waitFor(() => collector.records.length >= total, { timeoutMs: 30000, what: `every record of ${spec.name}` });
      await collector.stop();
      for (const record of collector.records) {
        texts.push(`${record.key?.toString() ?? ''} ${record.value?.toString() ?? ''} ${Object.values(record.headers).map(String).join(' ')}`);
      }
    }
  } finally {
    await admin.disconnect();
  }
  return texts;
}

/** The 43 characters after the key id: the part that must never be seen. */
function secretOf(key: string): string {
  return key.slice(-43);
}

/** No process output and no record holds any of the secrets. */
async function expectNoSecrets(processes: StackProcesses, kafka: Kafka, names: TopicNames, secrets: readonly string[]): Promise<void> {
  const lines = processes.lines();
  const records = await everyRecord(kafka, names);
  expect(lines.length).toBeGreaterThan(50);
  expect(records.length).toBeGreaterThan(10);
  for (const secret of secrets) {
    expect(secret.length).toBeGreaterThanOrEqual(20);
    expect(lines.filter((line) => line.includes(secret))).toEqual([]);
    expect(records.filter((record) => record.includes(secret))).toEqual([]);
  }
}

describe('API keys across the stack', () => {
  test('every route of every service, and the stream upgrade, × {none, malformed, unknown, revoked, without the scope, with it}', { timeout: 120000 }, async ({ brokers, topics, database, keys, kafka }) => {
    const withScope = new Map<Requirement, TestKey>();
    const withoutScope = new Map<Requirement, TestKey>();
    for (const requirement of ['admin', ...Object.keys(FAMILIES)] as Requirement[]) {
      withScope.set(requirement, await keys.create(requirement === 'admin' ? ['admin'] : FAMILIES[requirement]));
      const family = requirement === 'admin' ? [] : FAMILIES[requirement];
      withoutScope.set(requirement, await keys.create(EVERY_NON_ADMIN.filter((scope) => !family.includes(scope))));
    }
    const revoked = await keys.create(['admin']);
    await keys.revoke(revoked);
    const disposable = await keys.create(['health:read']);
    const unknown = mintKey().key;
    const ids: Ids = { adminKeyId: withScope.get('admin')!.keyId, disposableKeyId: disposable.keyId };

    const { stack, token } = await testStack({ brokers, topicPrefix: topics.prefix, databaseUrl: database.url });
    assertBuilt(stack);
    const processes = await StackProcesses.start(stack);
    onTestFinished(() => processes.kill());

    const credentials: Credential[] = [
      { name: 'no key', header: () => undefined, expect: () => ({ status: 401, code: 'AUTH_MISSING' }) },
      { name: 'malformed', header: () => 'Bearer sy_not-a-key', expect: () => ({ status: 401, code: 'AUTH_MALFORMED' }) },
      { name: 'unknown key', header: () => `Bearer ${unknown}`, expect: () => ({ status: 401, code: 'AUTH_KEY_UNKNOWN' }) },
      { name: 'revoked key', header: () => `Bearer ${revoked.key}`, expect: () => ({ status: 401, code: 'AUTH_KEY_REVOKED' }) },
      { name: 'without the scope', header: (requirement) => `Bearer ${withoutScope.get(requirement)!.key}`, expect: () => ({ status: 403, code: 'AUTH_SCOPE_MISSING' }) },
      // Last: the DELETE example revokes the disposable key.
      { name: 'with the scope', header: (requirement) => `Bearer ${withScope.get(requirement)!.key}`, expect: (example) => ({ status: example.status, ...(example.code === undefined ? {} : { code: example.code }) }) },
    ];

    const tables = routeTables(processes);
    const guarded = [...tables].flatMap(([service, routes]) =>
      routes.filter((route) => route.auth !== undefined).map((route) => ({ service, route, name: `${service} ${route.method} ${route.url}` })),
    );
    // Every route but the ops endpoints is guarded, and each has its example (no route is left out of the matrix).
    for (const [service, routes] of tables) {
      expect(routes.filter((route) => route.auth === undefined).map((route) => route.url).sort(), service).toEqual(['/healthz', '/metrics', '/readyz']);
    }
    expect(guarded.map((entry) => entry.name).sort()).toEqual(Object.keys(EXAMPLES).sort());

    const cells: string[] = [];
    for (const credential of credentials) {
      for (const { service, route, name } of guarded) {
        const example = EXAMPLES[name]!;
        const url = `${localUrl(findComponent(stack, service))}${example.path(ids)}`;
        const answer = await request(url, route.method, credential.header(route.auth!), example.body);
        const expected = credential.expect(example);
        expect({ cell: `${name} / ${credential.name}`, status: answer.status, ...(expected.code === undefined ? {} : { code: answer.code }) }).toEqual({
          cell: `${name} / ${credential.name}`,
          ...expected,
        });
        if (answer.status === 401) expect(answer.wwwAuthenticate, name).toMatch(/^Bearer realm="switchyard"/);
        cells.push(`${name} / ${credential.name}`);
      }
      const streamUrl = `${localUrl(findComponent(stack, 'ws-fanout'), 'ws')}/v1/stream`;
      const answer = await upgrade(streamUrl, credential.header('stream'));
      const expected = credential.name === 'with the scope' ? { status: 101 } : credential.expect({ path: () => '', status: 0 });
      expect({ cell: `upgrade / ${credential.name}`, ...answer, wwwAuthenticate: undefined }).toEqual({ cell: `upgrade / ${credential.name}`, ...expected, wwwAuthenticate: undefined });
      if (answer.status === 401) expect(answer.wwwAuthenticate).toMatch(/^Bearer /);
      cells.push(`upgrade / ${credential.name}`);
    }
    console.log(`[auth matrix] ${guarded.length} routes + the stream upgrade × ${credentials.length} credentials = ${cells.length} cells`);
    expect(cells).toHaveLength((guarded.length + 1) * credentials.length);

    const used = [...withScope.values(), ...withoutScope.values(), revoked, disposable].map((key) => secretOf(key.key));
    await expectNoSecrets(processes, kafka, topics.names, [...used, secretOf(unknown), token]);
  });

  test('a key revoked while it streams and sends commands is refused by every service within a second; its stream closes with 4401', { timeout: 120000 }, async ({ brokers, topics, database, keys, kafka }) => {
    const admin = await keys.create(['admin']);
    const victim = await keys.create(['commands:send:github.issue.*', 'commands:read', 'stream:**', 'health:read']);
    const { stack, token } = await testStack({ brokers, topicPrefix: topics.prefix, databaseUrl: database.url });
    assertBuilt(stack);
    const processes = await StackProcesses.start(stack);
    onTestFinished(() => processes.kill());
    const api = localUrl(findComponent(stack, 'api-gateway-adapter'));
    const health = localUrl(findComponent(stack, 'health-monitor'));
    const sync = localUrl(findComponent(stack, 'sync-worker'));
    const streamUrl = `${localUrl(findComponent(stack, 'ws-fanout'), 'ws')}/v1/stream?types=github.issue.*`;
    const stream = await StreamClient.subscribe(streamUrl, victim.key, { via: 'subprotocol' });
    onTestFinished(() => stream.close());
    const bearerVictim = `Bearer ${victim.key}`;

    // The victim is busy: commands in a loop until refused (its next request after the revocation must be).
    let sending = true;
    onTestFinished(() => {
      sending = false;
    });
    let accepted = 0;
    const sender = (async () => {
      while (sending) {
        const answer = await request(`${api}/v1/commands`, 'POST', bearerVictim, create);
        if (answer.status === 202) accepted += 1;
        else if (answer.status === 401) return answer.code;
        else throw new Error(`unexpected ${answer.status} ${answer.body}`);
      }
      return 'stopped';
    })();
    await waitFor(() => accepted >= 5, { what: 'the victim to have sent commands' });
    await stream.waitFor((frame) => frame.op === 'event' && frame.event?.type === 'github.issue.upserted');
    expect((await request(`${health}/v1/health`, 'GET', bearerVictim)).status).toBe(200);

    const revokedAt = performance.now();
    const revocation = await request(`${api}/v1/keys/${victim.keyId}`, 'DELETE', `Bearer ${admin.key}`);
    expect(revocation.status).toBe(200);
    const refusedBy = async (what: string, probe: () => Promise<boolean>) => {
      await waitFor(probe, { timeoutMs: 3000, intervalMs: 10, what });
      return Math.round(performance.now() - revokedAt);
    };
    const [adapterMs, healthMs, syncMs, upgradeMs, closed] = await Promise.all([
      refusedBy('the adapter', async () => (await request(`${api}/v1/commands`, 'POST', bearerVictim, create)).code === 'AUTH_KEY_REVOKED'),
      refusedBy('the health monitor', async () => (await request(`${health}/v1/health`, 'GET', bearerVictim)).code === 'AUTH_KEY_REVOKED'),
      // The victim is not admin: 403 before, 401 once the sync worker has the revocation.
      refusedBy('the sync worker', async () => (await request(`${sync}/v1/positions`, 'GET', bearerVictim)).code === 'AUTH_KEY_REVOKED'),
      refusedBy('ws-fanout upgrades', async () => (await upgrade(streamUrl, bearerVictim)).code === 'AUTH_KEY_REVOKED'),
      stream.closed.then((close) => ({ ...close, ms: Math.round(performance.now() - revokedAt) })),
    ]);
    expect(await sender).toBe('AUTH_KEY_REVOKED');
    console.log(`[revocation] refused after: adapter ${adapterMs} ms, health-monitor ${healthMs} ms, sync-worker ${syncMs} ms, ws-fanout upgrade ${upgradeMs} ms; open stream closed after ${closed.ms} ms`);
    expect(closed.code).toBe(4401);
    expect(closed.reason).toContain(victim.keyId);
    for (const ms of [adapterMs, healthMs, syncMs, upgradeMs, closed.ms]) expect(ms).toBeLessThan(1000);
    // The admin key is untouched.
    expect((await request(`${sync}/v1/positions`, 'GET', `Bearer ${admin.key}`)).status).toBe(200);

    await expectNoSecrets(processes, kafka, topics.names, [secretOf(victim.key), secretOf(admin.key), token]);
  });
});
