import { topics as catalog, type TopicEvent, type Topics } from '@switchyard/events';
import { findComponent, localUrl } from '@switchyard/infra';
import { test, waitFor, type EventCollector } from '@switchyard/testkit';
import type pg from 'pg';
import { describe, expect, onTestFinished } from 'vitest';
import { assertBuilt } from './support/built.js';
import { bearer, postCommand } from './support/http.js';
import { CLIENT_SCOPES, StackProcesses, testStack } from './support/stack.js';
import { StreamClient, type Frame } from './support/stream.js';

/**
 * The whole stack as `npm start` runs it (the same infra/src/stack.ts definition), each process from its built
 * output, on this test's topics, database and free ports: HTTP command → adapter → GitHub simulator → Kafka →
 * Postgres (sync-worker) and WebSocket (ws-fanout). Every request presents an API key published to this test's
 * api-keys topic before the services start; one without a key, or without the scope, gets nowhere.
 */

type ResultEvent = TopicEvent<Topics['commandResults']>;

interface IssueRow {
  repository: string;
  number: number;
  title: string;
  state: string;
  state_reason: string | null;
  closed_at: Date | null;
  version: string;
  raw: Record<string, unknown>;
}

interface Flow {
  readonly result: ResultEvent;
  readonly row: IssueRow;
  readonly commandLog: { status: string; command_type: string; entity_key: string | null };
  readonly frame: Frame;
  readonly resultFrame: Frame;
  readonly ms: { accepted: number; row: number; frame: number };
}

/**
 * Submits a command and follows it to its three destinations, timing each from just before the POST: the
 * `succeeded` result on Kafka, the issue row it caused (entities.origin_id is the command id) with its command_log
 * row, and the `github.issue.upserted` frame on the WebSocket.
 */
async function follow(
  apiUrl: string,
  key: string,
  command: unknown,
  deps: { results: EventCollector<Topics['commandResults']>; pool: pg.Pool; stream: StreamClient },
): Promise<Flow> {
  const t0 = performance.now();
  const answer = await postCommand(apiUrl, key, command);
  const accepted = performance.now() - t0;
  expect(answer.status, JSON.stringify(answer.body)).toBe(202);
  const commandId = answer.body['commandId'] as string;

  const [result, rowAt, frame, resultFrame] = await Promise.all([
    deps.results.waitForEvent((event) => event.data.commandId === commandId && event.data.status !== 'accepted'),
    waitFor(
      async () => {
        const { rows } = await deps.pool.query<IssueRow>(
          `SELECT g.repository, g.number, g.title, g.state, g.state_reason, g.closed_at, g.version, g.raw
             FROM github_issues g JOIN entities e ON e.source = 'github' AND e.entity_type = 'issue' AND e.entity_id = g.entity_id
            WHERE e.origin_id = $1`,
          [commandId],
        );
        return rows[0] && { row: rows[0], at: performance.now() };
      },
      { intervalMs: 10, what: `the github_issues row of command ${commandId}` },
    ),
    deps.stream.waitFor((frame) => frame.event?.type === 'github.issue.upserted' && frame.event.causationid === commandId),
    deps.stream.waitFor((frame) => frame.event?.type === 'switchyard.command.succeeded' && frame.event.data['commandId'] === commandId),
  ]);
  const commandLog = await waitFor(
    async () => {
      const { rows } = await deps.pool.query<Flow['commandLog']>(
        'SELECT status, command_type, entity_key FROM command_log WHERE command_id = $1',
        [commandId],
      );
      return rows[0]?.status === 'succeeded' && rows[0];
    },
    { what: `command_log to say ${commandId} succeeded` },
  );
  return {
    result,
    row: rowAt.row,
    commandLog,
    frame: frame.frame,
    resultFrame: resultFrame.frame,
    ms: { accepted, row: rowAt.at - t0, frame: frame.at - t0 },
  };
}

describe('the stack end to end (built processes, the launcher’s stack definition)', () => {
  test('a command flows HTTP → GitHub → Kafka → Postgres and WebSocket; no key gets 401, malformed bodies 400; every process exits 0 on SIGTERM', async ({
    brokers,
    topics,
    database,
    collect,
    keys,
  }) => {
    const { stack, token } = await testStack({ brokers, topicPrefix: topics.prefix, databaseUrl: database.url });
    assertBuilt(stack);
    const results = await collect(catalog.commandResults);
    const client = await keys.create(CLIENT_SCOPES, { name: 'e2e client' });
    const watcher = await keys.create(['stream:github.issue.*'], { name: 'e2e watcher' });
    const started = performance.now();
    const processes = await StackProcesses.start(stack);
    onTestFinished(() => processes.kill());
    console.log(`[e2e] stack ready in ${Math.round(performance.now() - started)} ms`);

    const api = localUrl(findComponent(stack, 'api-gateway-adapter'));
    const streamUrl = `${localUrl(findComponent(stack, 'ws-fanout'), 'ws')}/v1/stream`;
    const stream = await StreamClient.subscribe(`${streamUrl}?types=github.issue.*,switchyard.command.*`, client.key);
    onTestFinished(() => stream.close());
    // A browser cannot set headers: the same key as a subprotocol next to switchyard.v1.
    const browser = await StreamClient.subscribe(`${streamUrl}?types=github.issue.*`, watcher.key, { via: 'subprotocol' });
    onTestFinished(() => browser.close());
    expect(browser.protocol).toBe('switchyard.v1');
    const deps = { results, pool: database.pool, stream };

    // Create.
    const created = await follow(
      api,
      client.key,
      { type: 'github.issue.create', input: { owner: 'acme', repo: 'widgets', title: 'E2E: widget jams', labels: ['e2e'] } },
      deps,
    );
    const commandId = created.result.data.commandId;
    expect(created.result).toMatchObject({
      type: 'switchyard.command.succeeded',
      // ws-fanout's `subjects` filter finds a command's results by its id (services/ws-fanout/README.md).
      subject: commandId,
      correlationid: commandId,
      causationid: commandId,
      data: {
        commandType: 'github.issue.create',
        status: 'succeeded',
        entity: { key: 'github:issue:acme/widgets#1', source: 'github', entityType: 'issue', entityId: 'acme/widgets#1' },
      },
    });
    expect(created.row).toMatchObject({ repository: 'acme/widgets', number: 1, title: 'E2E: widget jams', state: 'open', closed_at: null });
    expect(created.commandLog).toEqual({ status: 'succeeded', command_type: 'github.issue.create', entity_key: 'github:issue:acme/widgets#1' });
    expect(created.frame).toMatchObject({
      op: 'event',
      subscription: 'default',
      event: { type: 'github.issue.upserted', subject: 'github:issue:acme/widgets#1', correlationid: commandId },
    });
    // The same state everywhere: the WebSocket frame carries what Postgres holds, at the same version.
    expect(created.frame.event?.data['state']).toEqual(created.row.raw);
    expect(created.frame.event?.entityversion).toBe(created.row.version);
    expect(created.result.data.entity?.version).toBe(created.row.version);
    expect(created.resultFrame.event?.id).toBe(created.result.id);
    // The command's events carry the key's id (never the key) as their Auth Context, and its status is the key's to read.
    expect(created.result).toMatchObject({ authtype: 'api_key', authid: client.keyId });
    expect(JSON.stringify(created.result)).not.toContain(client.key);
    const status = await fetch(`${api}/v1/commands/${commandId}`, { headers: bearer(client.key) });
    expect(status.status).toBe(200);
    expect(await status.json()).toMatchObject({ commandId, status: 'succeeded' });
    expect((await fetch(`${api}/v1/commands/${commandId}`, { headers: bearer(watcher.key) })).status).toBe(403);
    expect((await browser.waitFor((frame) => frame.event?.type === 'github.issue.upserted' && frame.event.causationid === commandId)).frame).toMatchObject({
      event: { subject: 'github:issue:acme/widgets#1' },
    });

    // Close: an update takes the same path.
    const closed = await follow(
      api,
      client.key,
      { type: 'github.issue.update', input: { owner: 'acme', repo: 'widgets', number: 1, state: 'closed' } },
      deps,
    );
    expect(closed.result.data).toMatchObject({ commandType: 'github.issue.update', status: 'succeeded', entity: { entityId: 'acme/widgets#1' } });
    expect(closed.row).toMatchObject({ number: 1, title: 'E2E: widget jams', state: 'closed', state_reason: 'completed' });
    expect(closed.row.closed_at).toBeInstanceOf(Date);
    expect(closed.commandLog).toMatchObject({ status: 'succeeded', command_type: 'github.issue.update' });
    expect(closed.frame.event?.data['state']).toEqual(closed.row.raw);
    expect(closed.row.version > created.row.version).toBe(true);
    const { rows: issues } = await database.pool.query('SELECT number FROM github_issues');
    expect(issues).toEqual([{ number: 1 }]);

    for (const [what, flow] of [['create', created], ['close', closed]] as const) {
      console.log(
        `[e2e] ${what}: HTTP 202 after ${flow.ms.accepted.toFixed(1)} ms; command→row ${flow.ms.row.toFixed(1)} ms; ` +
          `command→frame ${flow.ms.frame.toFixed(1)} ms`,
      );
    }

    // No key, a key that is not one, a key without the scope: refused before anything reaches Kafka.
    const before = results.records.length;
    const create = { type: 'github.issue.create', input: { owner: 'acme', repo: 'widgets', title: 'not sent' } };
    const missing = await fetch(`${api}/v1/commands`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(create) });
    expect(missing.status).toBe(401);
    expect(missing.headers.get('www-authenticate')).toMatch(/^Bearer/);
    expect(await missing.json()).toMatchObject({ error: { code: 'AUTH_MISSING', retriable: false } });
    const forged = `${client.keyId}_${'A'.repeat(43)}`;
    expect(await postCommand(api, forged, create)).toMatchObject({ status: 401, body: { error: { code: 'AUTH_KEY_UNKNOWN' } } });
    expect(await postCommand(api, watcher.key, create)).toMatchObject({ status: 403, body: { error: { code: 'AUTH_SCOPE_MISSING' } } });
    expect(await StreamClient.refusal(`${streamUrl}?types=github.issue.*`)).toMatchObject({
      status: 401,
      wwwAuthenticate: expect.stringMatching(/^Bearer/),
      body: { error: { code: 'AUTH_MISSING' } },
    });
    expect(await StreamClient.refusal(`${streamUrl}?types=github.issue.*`, forged)).toMatchObject({ status: 401, body: { error: { code: 'AUTH_KEY_UNKNOWN' } } });

    // Malformed bodies: 400 naming the field, and nothing reaches Kafka.
    expect(await postCommand(api, client.key, { type: 'github.issue.create', input: { owner: 'acme', repo: 'widgets' } })).toEqual({
      status: 400,
      body: { error: { code: 'AGW_COMMAND_INPUT_INVALID', field: 'input.title', message: expect.stringContaining('input.title'), retriable: false } },
    });
    expect(await postCommand(api, client.key, { type: 'github.issue.crate', input: {} })).toMatchObject({
      status: 400,
      body: { error: { code: 'AGW_COMMAND_TYPE_INVALID', field: 'type' } },
    });
    expect(await postCommand(api, client.key, { type: 'github.issue.create', input: { owner: 'acme', repo: 'widgets', title: 'x' }, connexion: 'github' })).toMatchObject({
      status: 400,
      body: { error: { code: 'AGW_REQUEST_INVALID', field: 'connexion' } },
    });
    expect(await postCommand(api, client.key, '{"type": "github.issue.create", ')).toMatchObject({ status: 400, body: { error: { code: 'RT_REQUEST_INVALID' } } });

    // Graceful shutdown of every process.
    stream.close();
    browser.close();
    expect(await processes.stop()).toEqual({
      'github-simulator': 0,
      'api-gateway-adapter': 0,
      'sync-worker': 0,
      'health-monitor': 0,
      'ws-fanout': 0,
    });
    expect(results.records.length).toBe(before);
    const lines = processes.lines();
    expect(lines.length).toBeGreaterThan(40);
    for (const line of lines) for (const secret of [token, client.key, watcher.key, forged]) expect(line).not.toContain(secret);
  });
});
