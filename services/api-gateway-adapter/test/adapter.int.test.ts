import { Authenticator, CommandBudget, Grants, guard, mintKey, type KeyManager } from '@switchyard/auth';
import { commandMarker } from '@switchyard/connectors';
import { compareVersions, topics as catalog, type TopicEvent, type Topics } from '@switchyard/events';
import { createKafka, EventProducer, TopicNames } from '@switchyard/kafka';
import { createLogger, createMetricsRegistry } from '@switchyard/service-runtime';
import { freePort, test, testLogger, waitFor } from '@switchyard/testkit';
import { describe, expect, it } from 'vitest';
import { buildApp } from '../src/app.js';
import { CommandIntake } from '../src/intake.js';
import { createAdapterMetrics } from '../src/metrics.js';
import type { CommandsView } from '../src/view.js';
import { command, postCommand, publishKey, SETTLE_MS, SIM_TOKEN, startAdapter } from './harness.js';

type ResultEvent = TopicEvent<Topics['commandResults']>;

const REPO = 'acme/widgets';
const ISSUES_ROUTE = '/repos/{owner}/{repo}/issues';
const PARENT_TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';
const create = (title: string, extra: Record<string, unknown> = {}) => ({ owner: 'acme', repo: 'widgets', title, ...extra });

function finalResult(commandId: string) {
  return (event: ResultEvent) => event.data.commandId === commandId && event.data.status !== 'accepted';
}

describe('api-gateway-adapter (in process, real Kafka, simulated GitHub)', () => {
  test('a create command over HTTP yields accepted → succeeded and an upserted event with the issue the simulator stored', async ({
    brokers,
    topics,
    collect,
  }) => {
    const adapter = await startAdapter({ brokers, topics });
    try {
      const [commands, results, entities] = await Promise.all([
        collect(catalog.commands),
        collect(catalog.commandResults),
        collect(catalog.entities),
      ]);
      const submitted = await postCommand(
        adapter,
        {
          type: 'github.issue.create',
          input: create('Widget jams', { body: 'at 3 rpm', labels: ['bug'], assignees: ['octocat'] }),
          correlationId: 'order-42',
        },
        { traceparent: `00-${PARENT_TRACE}-00f067aa0ba902b7-01` },
      );
      expect(submitted.status).toBe(202);
      const commandId = String(submitted.body['commandId']);
      expect(submitted.body).toEqual({
        commandId,
        correlationId: 'order-42',
        type: 'github.issue.create',
        target: 'github:repository:acme/widgets',
      });

      const succeeded = await results.waitForEvent(finalResult(commandId));
      const upserted = await entities.waitForEvent((event) => event.causationid === commandId);
      const sent = await commands.waitForEvent((event) => event.id === commandId);

      expect(submitted.headers.get('location')).toBe(`/v1/commands/${commandId}`);

      // The command on the topic.
      expect(sent).toMatchObject({
        type: 'github.issue.create',
        source: 'switchyard/api-gateway-adapter/http',
        subject: 'github:repository:acme/widgets',
        correlationid: 'order-42',
        data: { connection: 'github', idempotencyKey: commandId },
      });

      // Its results, in order.
      expect(results.events.filter((event) => event.data.commandId === commandId).map((event) => event.data.status)).toEqual([
        'accepted',
        'succeeded',
      ]);
      const stored = adapter.sim.control.issue(REPO, 1);
      expect(stored).toMatchObject({ title: 'Widget jams', labels: [expect.objectContaining({ name: 'bug' })] });
      // The body carries the command's marker, invisible when rendered, so the issue can be found again.
      expect(stored?.['body']).toBe(`at 3 rpm\n\n${commandMarker(commandId)}`);

      // The entity event carries the full state GitHub answered with: what the simulator stored.
      expect(upserted.type).toBe('github.issue.upserted');
      expect(upserted.data.state).toEqual(stored);
      expect(upserted.data).toMatchObject({
        source: 'github',
        entityType: 'issue',
        entityId: 'acme/widgets#1',
        origin: { kind: 'command', id: commandId, connection: 'github' },
      });
      expect(upserted.subject).toBe('github:issue:acme/widgets#1');
      const record = entities.records.find((entry) => entry.decoded.ok && entry.decoded.event.id === upserted.id);
      expect(record?.key?.toString()).toBe('github:issue:acme/widgets#1');
      expect(upserted.entityversion).toBe(upserted.data.version);
      expect(upserted.data.version.startsWith(String(stored?.['updated_at']).replace('Z', '.000000Z/'))).toBe(true);

      expect(succeeded.data).toMatchObject({
        status: 'succeeded',
        commandType: 'github.issue.create',
        attempts: 1,
        entity: { key: 'github:issue:acme/widgets#1', source: 'github', entityType: 'issue', entityId: 'acme/widgets#1', version: upserted.data.version },
      });
      // The result says where the entity event is, so a reader can wait for it to be projected.
      expect(succeeded.data.entity?.position).toEqual({ partition: record?.partition, offset: record?.offset });
      expect(succeeded.data.foundExisting).toBeUndefined();
      expect(succeeded.data.durationMs).toBeGreaterThanOrEqual(0);

      // Everything the command caused shares its correlation, names it as cause, and continues its trace.
      for (const event of [...results.events.filter((entry) => entry.data.commandId === commandId), upserted]) {
        expect(event.correlationid).toBe('order-42');
        expect(event.causationid).toBe(commandId);
        expect(event.traceparent?.split('-')[1]).toBe(PARENT_TRACE);
        expect(event.traceparent).not.toBe(sent.traceparent);
      }
    } finally {
      await adapter.stop();
    }
  });

  test('invalid HTTP bodies get 400 naming the field, and nothing reaches the commands topic', async ({ brokers, topics, collect }) => {
    const adapter = await startAdapter({ brokers, topics });
    try {
      const commands = await collect(catalog.commands);
      const cases: [unknown, string, string][] = [
        [{ type: 'github.issue.delete', input: create('x') }, 'AGW_COMMAND_TYPE_INVALID', 'type'],
        [{ type: 'github.issue.create', input: { owner: 'acme', repo: 'widgets' } }, 'AGW_COMMAND_INPUT_INVALID', 'input.title'],
        [{ type: 'github.issue.create', input: create('x', { assignees: 'octocat' }) }, 'AGW_COMMAND_INPUT_INVALID', 'input.assignees'],
        [{ type: 'github.issue.create', input: create('x'), connection: 'gitlab' }, 'AGW_CONNECTION_INVALID', 'connection'],
      ];
      for (const [body, code, field] of cases) {
        const answer = await postCommand(adapter, body);
        expect(answer.status, JSON.stringify(body)).toBe(400);
        expect(answer.body).toEqual({ error: { code, field, message: expect.stringContaining(field), retriable: false } });
      }
      const notJson = await postCommand(adapter, '{"type": ');
      expect(notJson.status).toBe(400);
      expect(notJson.body).toMatchObject({ error: { code: 'RT_REQUEST_INVALID', retriable: false } });

      // A projection rebuild needs an admin key; the harness key may send provider commands only.
      const rebuild = { type: 'switchyard.projection.rebuild', input: { projection: 'entities' } };
      const forbidden = await postCommand(adapter, rebuild);
      expect({ status: forbidden.status, body: forbidden.body }).toEqual({
        status: 403,
        body: { error: { code: 'AUTH_SCOPE_MISSING', field: 'type', message: `type: key ${adapter.key.keyId} lacks the scope admin`, retriable: false } },
      });

      // A valid command afterwards is the only record on the topic. (A key published now reaches the adapter within
      // a fetch; until then it is unknown, a 401 that writes nothing.)
      const admin = await publishKey(brokers, topics, ['admin']);
      const valid = await waitFor(async () => {
        const answer = await postCommand(adapter, rebuild, admin.headers);
        return answer.status === 401 ? undefined : answer;
      }, { timeoutMs: 5000, what: 'the admin key to be known' });
      expect(valid.status).toBe(202);
      await commands.waitForEvent((event) => event.id === valid.body['commandId']);
      await new Promise((resolve) => setTimeout(resolve, 300));
      expect(commands.records).toHaveLength(1);
      expect(adapter.sim.control.counters().requests).toEqual({});
    } finally {
      await adapter.stop();
    }
  });

  test('a malformed record yields a rejected result and a dead letter, and the next command still succeeds', async ({
    brokers,
    topics,
    producer,
    collect,
  }) => {
    const adapter = await startAdapter({ brokers, topics });
    try {
      const [results, deadLetters] = await Promise.all([collect(catalog.commandResults), collect(catalog.deadLetters)]);
      // One partition for all of them, so they are handled in this order.
      const key = 'github:repository:acme/widgets';
      const notJson = Buffer.from('{"type": "github.issue.create", oops');
      const invalid = command('github.issue.create', create('x')).envelope;
      const invalidBytes = Buffer.from(JSON.stringify({ ...invalid, id: 'cmd-invalid-1', data: { ...invalid.data, input: { owner: 'acme', repo: 'widgets' } } }));
      const foreign = command('switchyard.projection.rebuild', { projection: 'entities' }).envelope;
      const foreignMalformed = Buffer.from(JSON.stringify({ ...foreign, id: 'cmd-foreign-bad', data: { input: {} } }));
      await producer.sendRaw([
        {
          topic: topics.name(catalog.commands),
          messages: [notJson, invalidBytes, Buffer.from(JSON.stringify(foreign)), foreignMalformed].map((value) => ({ key, value, headers: {} })),
        },
      ]);
      const good = command('github.issue.create', create('after the bad ones'));
      await producer.send(catalog.commands, [good.envelope]);

      await results.waitForEvent(finalResult(good.receipt.commandId));
      // Produced before the good command's results, but on other partitions, so possibly read after them.
      await waitFor(() => results.events.filter((event) => event.data.status === 'rejected').length >= 3, { what: 'three rejections' });
      const rejected = results.events.filter((event) => event.data.status === 'rejected');
      expect(rejected).toHaveLength(3);
      // Results are keyed by command id, so they land on different partitions: find each by what it is about.
      const first = rejected.find((event) => event.data.error?.code === 'EVT_NOT_JSON');
      const second = rejected.find((event) => event.data.commandId === 'cmd-invalid-1');
      const third = rejected.find((event) => event.data.commandId === 'cmd-foreign-bad');
      expect(first?.data).toMatchObject({
        commandId: expect.stringMatching(new RegExp(`^${topics.name(catalog.commands).replace(/\./g, '\\.')}/\\d+/0$`)),
        error: { code: 'EVT_NOT_JSON', retriable: false },
      });
      expect(second?.data).toMatchObject({
        commandId: 'cmd-invalid-1',
        commandType: 'github.issue.create',
        error: { code: 'EVT_INVALID_DATA', retriable: false, field: 'data.input.title' },
      });
      expect(second?.correlationid).toBe(invalid.correlationid);
      expect(second?.causationid).toBe('cmd-invalid-1');
      // A malformed command is answered whichever service its type names (the sync worker skips undecodable ones);
      // a valid one for the sync worker is left to it.
      expect(third?.data).toMatchObject({
        commandId: 'cmd-foreign-bad',
        commandType: 'switchyard.projection.rebuild',
        error: { code: 'EVT_INVALID_DATA' },
      });
      expect(results.events.some((event) => event.data.commandId === foreign.id)).toBe(false);
      expect(results.events.find(finalResult(good.receipt.commandId))?.data.status).toBe('succeeded');

      const letters = await deadLetters.waitForCount(3);
      expect(letters).toHaveLength(3);
      const originals = letters.map((entry) => (entry.decoded.ok ? entry.decoded.event.data : undefined));
      expect(originals.map((data) => Buffer.from(data?.original.value ?? '', 'base64').toString())).toEqual([
        notJson.toString(),
        invalidBytes.toString(),
        foreignMalformed.toString(),
      ]);
      expect(originals.map((data) => data?.error)).toEqual([
        expect.objectContaining({ code: 'EVT_NOT_JSON' }),
        expect.objectContaining({ code: 'EVT_INVALID_DATA', field: 'data.input.title' }),
        expect.objectContaining({ code: 'EVT_INVALID_DATA' }),
      ]);
      expect(originals[0]?.consumer.service).toBe('api-gateway-adapter');
      expect(adapter.sim.control.issues(REPO).map((issue) => issue['title'])).toEqual(['after the bad ones']);
    } finally {
      await adapter.stop();
    }
  });

  test('503s are retried and the command succeeds with attempts > 1, the simulator having seen exactly that many calls', async ({
    brokers,
    topics,
    collect,
  }) => {
    const adapter = await startAdapter({ brokers, topics });
    try {
      const [results, entities] = await Promise.all([collect(catalog.commandResults), collect(catalog.entities)]);
      adapter.sim.control.injectFault({ response: 503, count: 2, method: 'POST', route: ISSUES_ROUTE });
      const submitted = await postCommand(adapter, { type: 'github.issue.create', input: create('flaky upstream') });
      const result = await results.waitForEvent(finalResult(String(submitted.body['commandId'])));
      expect(result.data).toMatchObject({ status: 'succeeded', attempts: 3 });
      expect(adapter.sim.control.requestCount('POST', ISSUES_ROUTE)).toBe(3);
      expect(adapter.sim.control.issues(REPO)).toHaveLength(1);
      await entities.waitForEvent((event) => event.causationid === submitted.body['commandId']);
      expect(entities.records).toHaveLength(1);
      const metrics = await adapter.registry.getSingleMetricAsString('switchyard_upstream_requests_total');
      expect(metrics).toMatch(/status="503"[^\n]*\} 2/);
    } finally {
      await adapter.stop();
    }
  });

  test('a 422 fails the command with GitHub’s field, without retrying and without an entity event', async ({ brokers, topics, collect }) => {
    const adapter = await startAdapter({ brokers, topics });
    try {
      const [results, entities] = await Promise.all([collect(catalog.commandResults), collect(catalog.entities)]);
      const submitted = await postCommand(adapter, { type: 'github.issue.create', input: create('x', { assignees: ['ghost'] }) });
      const result = await results.waitForEvent(finalResult(String(submitted.body['commandId'])));
      expect(result.data).toMatchObject({
        status: 'failed',
        attempts: 1,
        error: { code: 'AGW_UPSTREAM_VALIDATION_FAILED', retriable: false, field: 'data.input.assignees' },
      });
      expect(result.data.error?.message).toContain('ghost');
      expect(adapter.sim.control.requestCount('POST', ISSUES_ROUTE)).toBe(1);
      expect(entities.records).toHaveLength(0);
    } finally {
      await adapter.stop();
    }
  });

  test('an update closes the issue; its state and version follow the create’s', async ({ brokers, topics, collect }) => {
    const adapter = await startAdapter({ brokers, topics });
    try {
      const [results, entities] = await Promise.all([collect(catalog.commandResults), collect(catalog.entities)]);
      const created = await postCommand(adapter, { type: 'github.issue.create', input: create('to be closed') });
      await results.waitForEvent(finalResult(String(created.body['commandId'])));
      const closed = await postCommand(adapter, {
        type: 'github.issue.update',
        input: { owner: 'acme', repo: 'widgets', number: 1, state: 'closed', state_reason: 'not_planned' },
      });
      expect(closed.body['target']).toBe('github:issue:acme/widgets#1');
      const result = await results.waitForEvent(finalResult(String(closed.body['commandId'])));
      expect(result.data.status).toBe('succeeded');
      const [first, second] = await entities.waitForCount(2);
      const states = [first, second].map((entry) => (entry?.decoded.ok ? entry.decoded.event.data : undefined));
      expect(states[1]?.state).toMatchObject({ state: 'closed', state_reason: 'not_planned', closed_at: expect.any(String) });
      expect(states[1]?.state).toEqual(adapter.sim.control.issue(REPO, 1));
      expect(compareVersions(states[1]!.version, states[0]!.version)).toBe(1);
    } finally {
      await adapter.stop();
    }
  });

  test('expired commands and unknown connections are rejected without calling GitHub', async ({ brokers, topics, producer, collect }) => {
    const adapter = await startAdapter({ brokers, topics }, { env: { COMMAND_MAX_AGE_MS: '60000' } });
    try {
      const results = await collect(catalog.commandResults);
      const old = command('github.issue.create', create('from the past'), { now: new Date(Date.now() - 120000) });
      const elsewhere = command('github.issue.create', create('elsewhere'), { connection: 'github-enterprise' });
      await producer.send(catalog.commands, [old.envelope, elsewhere.envelope]);
      const expired = await results.waitForEvent(finalResult(old.receipt.commandId));
      expect(expired.data).toMatchObject({ status: 'rejected', error: { code: 'AGW_COMMAND_EXPIRED', retriable: false, field: 'time' } });
      const unknown = await results.waitForEvent(finalResult(elsewhere.receipt.commandId));
      expect(unknown.data).toMatchObject({ status: 'rejected', error: { code: 'AGW_CONNECTION_INVALID', field: 'data.connection' } });
      expect(results.events.filter((event) => event.data.status === 'accepted')).toHaveLength(0);
      expect(adapter.sim.control.counters().requests).toEqual({});
    } finally {
      await adapter.stop();
    }
  });

  test('a create whose answer and lookups all time out ends OUTCOME_UNKNOWN at its deadline; an update that times out is retried', async ({
    brokers,
    topics,
    collect,
  }) => {
    const adapter = await startAdapter({ brokers, topics }, { env: { COMMAND_ATTEMPT_TIMEOUT_MS: '300', COMMAND_MAX_ATTEMPTS: '3', COMMAND_DEADLINE_MS: '2500', CIRCUIT_FAILURE_THRESHOLD: '100' } });
    try {
      const results = await collect(catalog.commandResults);
      const existing = await adapter.sim.app.inject({
        method: 'POST',
        url: '/repos/acme/widgets/issues',
        headers: { authorization: `Bearer ${SIM_TOKEN}` },
        payload: { title: 'already there' },
      });
      expect(existing.statusCode).toBe(201);
      adapter.sim.control.setLatency(700);

      const created = await postCommand(adapter, { type: 'github.issue.create', input: create('slow create') });
      const createResult = await results.waitForEvent(finalResult(String(created.body['commandId'])));
      expect(createResult.data).toMatchObject({ status: 'failed', attempts: 1, error: { code: 'AGW_UPSTREAM_OUTCOME_UNKNOWN', retriable: false } });
      // Sent once, never again: every lookup (GET /user first) timed out as well.
      expect(adapter.sim.control.requestCount('POST', ISSUES_ROUTE)).toBe(2);
      expect(adapter.sim.control.requestCount('GET', '/user')).toBeGreaterThan(1);

      const updated = await postCommand(adapter, {
        type: 'github.issue.update',
        input: { owner: 'acme', repo: 'widgets', number: 1, title: 'renamed slowly' },
      });
      const updateResult = await results.waitForEvent(finalResult(String(updated.body['commandId'])));
      expect(updateResult.data).toMatchObject({ status: 'failed', attempts: 3, error: { code: 'AGW_UPSTREAM_TIMEOUT', retriable: true } });
      expect(adapter.sim.control.requestCount('PATCH', `${ISSUES_ROUTE}/{number}`)).toBe(3);
    } finally {
      adapter.sim.control.setLatency(0);
      await adapter.stop();
    }
  });

  test.for([
    { name: '502 after it took effect', fault: { response: 502, when: 'after' } },
    { name: 'a dropped connection after it took effect', fault: { response: 'destroy', when: 'after' } },
    { name: 'an answer stalled past the attempt timeout', fault: { response: 'stall', delayMs: 1500, when: 'after' } },
  ] as const)('a create whose answer is lost ($name) is found again, not sent again: one issue, succeeded', async ({ fault }, { brokers, topics, collect }) => {
    const adapter = await startAdapter({ brokers, topics }, { env: { COMMAND_ATTEMPT_TIMEOUT_MS: '500' } });
    try {
      const [results, entities] = await Promise.all([collect(catalog.commandResults), collect(catalog.entities)]);
      adapter.sim.control.injectFault({ ...fault, method: 'POST', route: ISSUES_ROUTE });
      const submitted = await postCommand(adapter, { type: 'github.issue.create', input: create('lost answer') });
      const commandId = String(submitted.body['commandId']);
      const result = await results.waitForEvent(finalResult(commandId));
      expect(result.data).toMatchObject({ status: 'succeeded', attempts: 1, foundExisting: true, entity: { entityId: 'acme/widgets#1' } });
      expect(adapter.sim.control.requestCount('POST', ISSUES_ROUTE)).toBe(1);
      expect(adapter.sim.control.issues(REPO).map((issue) => issue['title'])).toEqual(['lost answer']);
      const upserted = await entities.waitForEvent((event) => event.causationid === commandId);
      expect(upserted.data.state).toEqual(adapter.sim.control.issue(REPO, 1));
      expect(await adapter.registry.getSingleMetricAsString('switchyard_upstream_lookups_total')).toMatch(/outcome="found"[^\n]*\} 1/);
    } finally {
      await adapter.stop();
    }
  });

  test('a lost answer that opens the circuit is still settled: the lookup passes the open circuit and finds the issue', async ({
    brokers,
    topics,
    collect,
  }) => {
    // One failure opens the circuit: the 502 of the create itself.
    const adapter = await startAdapter({ brokers, topics }, { env: { CIRCUIT_FAILURE_THRESHOLD: '1', CIRCUIT_HALF_OPEN_AFTER_MS: '60000' } });
    try {
      const results = await collect(catalog.commandResults);
      adapter.sim.control.injectFault({ response: 502, when: 'after', method: 'POST', route: ISSUES_ROUTE });
      const submitted = await postCommand(adapter, { type: 'github.issue.create', input: create('behind an open circuit') });
      const result = await results.waitForEvent(finalResult(String(submitted.body['commandId'])));
      expect(result.data).toMatchObject({ status: 'succeeded', foundExisting: true, entity: { entityId: 'acme/widgets#1' } });
      expect(await adapter.registry.getSingleMetricAsString('switchyard_upstream_circuit_state')).toMatch(/connection="github"[^\n]*\} 1/);
      // A new command, not yet sent, is refused by the open circuit: nothing reaches GitHub.
      const refused = await postCommand(adapter, { type: 'github.issue.create', input: create('not sent') });
      expect((await results.waitForEvent(finalResult(String(refused.body['commandId'])))).data).toMatchObject({ status: 'failed', error: { code: 'AGW_UPSTREAM_CIRCUIT_OPEN' } });
      expect(adapter.sim.control.issues(REPO)).toHaveLength(1);
    } finally {
      await adapter.stop();
    }
  });

  test('a create whose 502 came before it took effect is sent again only once a lookup cannot find it and the provider is done with the first', async ({
    brokers,
    topics,
    collect,
  }) => {
    const adapter = await startAdapter({ brokers, topics });
    try {
      const results = await collect(catalog.commandResults);
      adapter.sim.control.injectFault({ response: 502, when: 'before', method: 'POST', route: ISSUES_ROUTE });
      const started = Date.now();
      const submitted = await postCommand(adapter, { type: 'github.issue.create', input: create('second time lucky') });
      const result = await results.waitForEvent(finalResult(String(submitted.body['commandId'])));
      expect(result.data).toMatchObject({ status: 'succeeded', attempts: 2 });
      expect(result.data.foundExisting).toBeUndefined();
      // The harness's settle time (GITHUB_SETTLE_MS) passed between the two.
      expect(Date.now() - started).toBeGreaterThanOrEqual(SETTLE_MS);
      expect(adapter.sim.control.requestCount('POST', ISSUES_ROUTE)).toBe(2);
      expect(adapter.sim.control.issues(REPO)).toHaveLength(1);
      // An `accepted` before each attempt at a write that must happen once.
      const accepted = results.events.filter((event) => event.data.commandId === submitted.body['commandId'] && event.data.status === 'accepted');
      expect(accepted.map((event) => event.data.attempt)).toEqual([1, 2]);
    } finally {
      await adapter.stop();
    }
  });

  test('rate limits: a short retry-after is waited out, a reset an hour away fails the command at once', async ({
    brokers,
    topics,
    collect,
  }) => {
    const adapter = await startAdapter({ brokers, topics });
    try {
      const results = await collect(catalog.commandResults);
      adapter.sim.control.injectFault({ response: 429, retryAfterSeconds: 1, method: 'POST' });
      const waited = await postCommand(adapter, { type: 'github.issue.create', input: create('after a pause') });
      const waitedResult = await results.waitForEvent(finalResult(String(waited.body['commandId'])));
      expect(waitedResult.data).toMatchObject({ status: 'succeeded', attempts: 2 });
      expect(waitedResult.data.durationMs).toBeGreaterThanOrEqual(1000);

      adapter.sim.control.setRateLimit(SIM_TOKEN, { remaining: 0 });
      const refused = await postCommand(adapter, { type: 'github.issue.create', input: create('too many') });
      const refusedResult = await results.waitForEvent(finalResult(String(refused.body['commandId'])));
      expect(refusedResult.data).toMatchObject({ status: 'failed', attempts: 1, error: { code: 'AGW_UPSTREAM_RATE_LIMITED', retriable: true } });
      expect(adapter.sim.control.issues(REPO)).toHaveLength(1);
    } finally {
      await adapter.stop();
    }
  });

  test('the circuit opens after repeated upstream failures, fails fast while open, and closes after a good trial', async ({
    brokers,
    topics,
    collect,
  }) => {
    const adapter = await startAdapter({ brokers, topics }, { env: { CIRCUIT_FAILURE_THRESHOLD: '2', COMMAND_MAX_ATTEMPTS: '2', CIRCUIT_HALF_OPEN_AFTER_MS: '500' } });
    try {
      const results = await collect(catalog.commandResults);
      adapter.sim.control.setMode('unavailable');
      const first = await postCommand(adapter, { type: 'github.issue.create', input: create('one') });
      expect((await results.waitForEvent(finalResult(String(first.body['commandId'])))).data).toMatchObject({
        status: 'failed',
        attempts: 2,
        error: { code: 'AGW_UPSTREAM_UNAVAILABLE', retriable: true },
      });
      const second = await postCommand(adapter, { type: 'github.issue.create', input: create('two') });
      expect((await results.waitForEvent(finalResult(String(second.body['commandId'])))).data).toMatchObject({
        status: 'failed',
        attempts: 0,
        error: { code: 'AGW_UPSTREAM_CIRCUIT_OPEN' },
      });
      expect(adapter.sim.control.requestCount('POST', ISSUES_ROUTE)).toBe(2);
      expect(await adapter.registry.getSingleMetricAsString('switchyard_upstream_circuit_state')).toMatch(/connection="github"[^\n]*\} 1/);

      adapter.sim.control.setMode('up');
      await new Promise((resolve) => setTimeout(resolve, 600));
      const third = await postCommand(adapter, { type: 'github.issue.create', input: create('three') });
      expect((await results.waitForEvent(finalResult(String(third.body['commandId'])))).data).toMatchObject({ status: 'succeeded' });
      expect(await adapter.registry.getSingleMetricAsString('switchyard_upstream_circuit_state')).toMatch(/connection="github"[^\n]*\} 0/);
    } finally {
      await adapter.stop();
    }
  });

  test('a command goes through the connection it names, with that connection’s own credentials', async ({ brokers, topics, collect }) => {
    const acmeToken = `ghp_acme_${Math.random().toString(36).slice(2)}`;
    const adapter = await startAdapter(
      { brokers, topics },
      {
        simulator: { tokens: [SIM_TOKEN, { token: acmeToken, login: 'acme-bot' }] },
        env: (simUrl) => ({
          CONNECTIONS: 'github-acme',
          CONNECTION_GITHUB_ACME_PROVIDER: 'github',
          CONNECTION_GITHUB_ACME_TOKEN: acmeToken,
          CONNECTION_GITHUB_ACME_API_URL: simUrl,
        }),
      },
    );
    try {
      const results = await collect(catalog.commandResults);
      const viaDefault = await postCommand(adapter, { type: 'github.issue.create', input: create('as the bot') });
      const viaAcme = await postCommand(adapter, { type: 'github.issue.create', input: create('as acme'), connection: 'github-acme' });
      const nowhere = await postCommand(adapter, { type: 'github.issue.create', input: create('x'), connection: 'github-other' });
      expect([viaDefault.status, viaAcme.status, nowhere.status]).toEqual([202, 202, 400]);
      for (const answer of [viaDefault, viaAcme]) {
        expect((await results.waitForEvent(finalResult(String(answer.body['commandId'])))).data.status).toBe('succeeded');
      }
      // GitHub records who opened each issue: the token of the connection the command named.
      const openedBy = adapter.sim.control.issues(REPO).map((issue) => [issue['title'], (issue['user'] as { login: string }).login]);
      expect(openedBy.sort()).toEqual([
        ['as acme', 'acme-bot'],
        ['as the bot', 'switchyard-bot'],
      ]);
    } finally {
      await adapter.stop();
    }
  });

  test('a wrong token fails as unauthorized without retries, and no produced event contains the token', async ({
    brokers,
    topics,
    collect,
  }) => {
    const wrongToken = `ghp_wrong_${Math.random().toString(36).slice(2)}`;
    const adapter = await startAdapter({ brokers, topics }, { env: { GITHUB_TOKEN: wrongToken } });
    try {
      const [commands, results, entities, deadLetters] = await Promise.all([
        collect(catalog.commands),
        collect(catalog.commandResults),
        collect(catalog.entities),
        collect(catalog.deadLetters),
      ]);
      const submitted = await postCommand(adapter, { type: 'github.issue.create', input: create('x') });
      const result = await results.waitForEvent(finalResult(String(submitted.body['commandId'])));
      expect(result.data).toMatchObject({ status: 'failed', attempts: 1, error: { code: 'AGW_UPSTREAM_UNAUTHORIZED', retriable: false } });
      expect(result.data.error?.message).toContain('Bad credentials');
      const everything = [commands, results, entities, deadLetters].flatMap((collector) =>
        collector.records.map((record) => `${record.key?.toString() ?? ''} ${record.value?.toString() ?? ''}`),
      );
      expect(everything.length).toBeGreaterThanOrEqual(3);
      for (const text of everything) {
        expect(text).not.toContain(wrongToken);
        expect(text).not.toContain(SIM_TOKEN);
      }
    } finally {
      await adapter.stop();
    }
  });
});

describe('api-gateway-adapter HTTP without Kafka', () => {
  it('answers 503 with a retriable code when Kafka cannot take the command', async () => {
    const kafka = createKafka({ brokers: [`127.0.0.1:${await freePort()}`], clientId: 'agw-no-kafka', logger: testLogger });
    const producer = new EventProducer(kafka, new TopicNames('nowhere.'));
    const registry = createMetricsRegistry('api-gateway-adapter-test');
    const metrics = createAdapterMetrics(registry);
    // The view (the adapter's memory of Kafka) knows nothing here; Kafka itself is real and unreachable.
    const view: Pick<CommandsView, 'get' | 'caughtUp' | 'noteCommand' | 'waitForFinish' | 'waitForPosition'> = {
      get: () => undefined,
      caughtUp: async () => {},
      noteCommand: () => {},
      waitForFinish: async () => undefined,
      waitForPosition: async () => false,
    };
    const names = new TopicNames('nowhere.');
    const intake = new CommandIntake({ producer, view, connections: new Map([['github', 'github']]), produceTimeoutMs: 500, metrics });
    // Keys as the key store would hold them once read from the api-keys topic.
    const minted = mintKey();
    const record = { keyId: minted.keyId, name: 'test', hash: minted.hash, scopes: ['commands:send:**'], createdAt: new Date().toISOString(), createdBy: 'test' };
    const keyStore = { isLoaded: true, get: (id: string) => (id === minted.keyId ? { record, grants: new Grants(record.scopes) } : undefined), all: () => [] };
    const unusedKeys: Pick<KeyManager, 'create' | 'revoke'> = {
      create: () => Promise.reject(new Error('not in this test')),
      revoke: () => Promise.reject(new Error('not in this test')),
    };
    const app = buildApp({
      logger: createLogger({ service: 'test', level: 'silent' }),
      intake,
      view,
      names,
      registry,
      isStopping: () => false,
      checks: [],
      guard: (fastify) => guard(fastify, new Authenticator(keyStore)),
      budget: new CommandBudget({ commandsPerSecond: 10, burst: 10 }),
      keys: unusedKeys,
      keyStore,
    });
    await app.listen({ port: 0, host: '127.0.0.1' });
    try {
      const address = app.server.address();
      const url = `http://127.0.0.1:${typeof address === 'object' && address !== null ? address.port : 0}`;
      const answer = await postCommand({ url, headers: { authorization: `Bearer ${minted.key}` } }, { type: 'github.issue.create', input: create('x') });
      expect(answer.status).toBe(503);
      expect(answer.body).toEqual({ error: { code: 'AGW_KAFKA_UNAVAILABLE', message: expect.any(String), retriable: true } });
      expect(await registry.getSingleMetricAsString('switchyard_command_submissions_total')).toMatch(/outcome="unavailable"[^\n]*\} 1/);
    } finally {
      await app.close();
    }
  });
});
