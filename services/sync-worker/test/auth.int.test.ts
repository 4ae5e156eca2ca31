import { createEvent, microsFromDate, newId, sourceVersions, topics, type AuthContext, type GithubIssue } from '@switchyard/events';
import { testLogger, waitFor } from '@switchyard/testkit';
import type pg from 'pg';
import { describe, expect } from 'vitest';
import { readOffsets } from '../src/offsets.js';
import { projections } from '../src/projections/index.js';
import { rebuildProjection } from '../src/rebuild.js';
import { startWorker, test, waitUntilCaughtUp } from './support/worker.js';

const REPOSITORY = 'acme/widgets';

function issue(number: number, title: string, updatedAt: Date): GithubIssue {
  const at = `${updatedAt.toISOString().slice(0, 19)}Z`;
  return { id: 9000 + number, number, title, state: 'open', labels: [], created_at: at, updated_at: at };
}

/** A command as the adapter takes it over HTTP (or, without `auth`, as produced straight to Kafka), and what it causes. */
function updateAndItsEvents(number: number, auth: AuthContext | undefined) {
  const id = newId();
  const entityId = `${REPOSITORY}#${number}`;
  const key = `github:issue:${entityId}`;
  const state = issue(number, `updated by ${auth?.id ?? 'no one'}`, new Date());
  const version = sourceVersions.githubIssue(state, microsFromDate(new Date()));
  const command = createEvent({
    type: 'github.issue.update',
    id,
    source: 'switchyard/test',
    subject: key,
    auth,
    data: { connection: 'github', idempotencyKey: id, input: { owner: 'acme', repo: 'widgets', number, title: state.title } },
  });
  const result = (status: 'accepted' | 'succeeded') =>
    createEvent({
      type: `switchyard.command.${status}`,
      source: 'switchyard/test',
      subject: id,
      correlationId: id,
      causationId: id,
      auth,
      data: {
        commandId: id,
        commandType: 'github.issue.update',
        status,
        ...(status === 'succeeded' ? { entity: { key, source: 'github', entityType: 'issue', entityId, version } } : {}),
      },
    });
  const entity = createEvent({
    type: 'github.issue.upserted',
    source: 'switchyard/test',
    subject: key,
    correlationId: id,
    causationId: id,
    entityVersion: version,
    auth,
    data: { source: 'github' as const, entityType: 'issue' as const, entityId, version, origin: { kind: 'command' as const, id, connection: 'github' }, state },
  });
  return { id, key, entityId, command, results: [result('accepted'), result('succeeded')], entity };
}

/** The audit columns of both commands and both issues. */
async function auditRows(pool: pg.Pool, commandIds: readonly string[]) {
  const log = await pool.query<{ command_id: string; status: string; auth_type: string | null; auth_id: string | null; entity_key: string | null; input: unknown }>(
    'SELECT command_id, status, auth_type, auth_id, entity_key, input FROM command_log WHERE command_id = ANY($1) ORDER BY entity_key',
    [commandIds],
  );
  const entities = await pool.query<{ entity_id: string; changed_by_type: string | null; changed_by: string | null; origin_id: string }>(
    "SELECT entity_id, changed_by_type, changed_by, origin_id FROM entities WHERE source = 'github' AND entity_type = 'issue' ORDER BY entity_id",
  );
  // The typed view says it too.
  const view = await pool.query<{ number: number; changed_by: string | null }>('SELECT number, changed_by FROM github_issues ORDER BY number');
  return { log: log.rows, entities: entities.rows, view: view.rows };
}

describe('API keys and the audit trail', () => {
  test('GET /v1/positions: 401 without a key, 403 AUTH_SCOPE_MISSING for a key without admin, 200 for admin', { timeout: 90000 }, async ({
    env,
    keys,
    producer,
    admin,
    topics: t,
    database,
  }) => {
    const adminKey = await keys.create(['admin']);
    const healthKey = await keys.create(['health:read', 'commands:read:all']);
    const worker = await startWorker(env);
    try {
      // Something projected, so there are positions to list.
      const { entity } = updateAndItsEvents(1, undefined);
      await producer.send(topics.entities, [entity]);
      await waitUntilCaughtUp(database.pool, admin, 'entities', [t.name(topics.entities)]);

      const anonymous = await fetch(`${worker.url}/v1/positions`);
      expect(anonymous.status).toBe(401);
      expect(anonymous.headers.get('www-authenticate')).toMatch(/^Bearer realm="switchyard"/);
      expect(await anonymous.json()).toMatchObject({ error: { code: 'AUTH_MISSING' } });

      const malformed = await fetch(`${worker.url}/v1/positions`, { headers: { authorization: 'Bearer not-a-key' } });
      expect(malformed.status).toBe(401);

      const withoutAdmin = await fetch(`${worker.url}/v1/positions`, { headers: healthKey.headers });
      expect(withoutAdmin.status).toBe(403);
      expect(await withoutAdmin.json()).toEqual({
        error: { code: 'AUTH_SCOPE_MISSING', message: `key ${healthKey.keyId} lacks the scope admin`, retriable: false },
      });

      const allowed = await fetch(`${worker.url}/v1/positions`, { headers: adminKey.headers });
      expect(allowed.status).toBe(200);
      const stored = (await readOffsets(database.pool)).map((row) => ({ ...row, nextOffset: row.nextOffset.toString() }));
      const { positions } = (await allowed.json()) as { positions: { projection: string; nextOffset: string }[] };
      expect(positions).toEqual(JSON.parse(JSON.stringify(stored)));
      expect(positions.filter((row) => row.projection === 'entities').map((row) => row.nextOffset)).toContain('1');

      // The ops endpoints stay open.
      expect((await fetch(`${worker.url}/readyz`)).status).toBe(200);

      // A revocation reaches the worker without a restart.
      await keys.revoke(adminKey);
      await waitFor(async () => (await fetch(`${worker.url}/v1/positions`, { headers: adminKey.headers })).status === 401, {
        timeoutMs: 10000,
        what: 'the revoked key to be refused',
      });
      // No key appears in what the worker logged.
      const logged = worker.lines.join('\n');
      for (const key of [adminKey, healthKey]) expect(logged).not.toContain(key.key);
    } finally {
      expect(await worker.stop()).toBe(0);
    }
  });

  test('a command, its results and its entity event land with their Auth Context in command_log.auth_id and entities.changed_by, and rebuilds keep them', { timeout: 120000 }, async ({
    env,
    kafka,
    producer,
    admin,
    topics: t,
    database,
  }) => {
    const worker = await startWorker(env);
    try {
      const viaHttp = updateAndItsEvents(7, { type: 'api_key', id: 'sy_0123456789abcdef' });
      const straightToKafka = updateAndItsEvents(8, undefined);
      // The results and the entity event first: the command's row is made from them, then completed by the command.
      for (const sent of [viaHttp, straightToKafka]) {
        await producer.send(topics.commandResults, sent.results);
        await producer.send(topics.entities, [sent.entity]);
      }
      await producer.send(topics.commands, [viaHttp.command, straightToKafka.command]);
      await waitUntilCaughtUp(database.pool, admin, 'command_log', [t.name(topics.commands), t.name(topics.commandResults)]);
      await waitUntilCaughtUp(database.pool, admin, 'entities', [t.name(topics.entities)]);

      const expected = {
        log: [
          {
            command_id: viaHttp.id,
            status: 'succeeded',
            auth_type: 'api_key',
            auth_id: 'sy_0123456789abcdef',
            entity_key: viaHttp.key,
            input: { owner: 'acme', repo: 'widgets', number: 7, title: 'updated by sy_0123456789abcdef' },
          },
          {
            command_id: straightToKafka.id,
            status: 'succeeded',
            auth_type: null,
            auth_id: null,
            entity_key: straightToKafka.key,
            input: { owner: 'acme', repo: 'widgets', number: 8, title: 'updated by no one' },
          },
        ],
        entities: [
          { entity_id: viaHttp.entityId, changed_by_type: 'api_key', changed_by: 'sy_0123456789abcdef', origin_id: viaHttp.id },
          { entity_id: straightToKafka.entityId, changed_by_type: null, changed_by: null, origin_id: straightToKafka.id },
        ],
        view: [
          { number: 7, changed_by: 'sy_0123456789abcdef' },
          { number: 8, changed_by: null },
        ],
      };
      const commandIds = [viaHttp.id, straightToKafka.id];
      expect(await auditRows(database.pool, commandIds)).toEqual(expected);

      // Rebuilds bring the columns back from the topics: erase them, rebuild both projections under the live worker.
      await database.pool.query('UPDATE command_log SET auth_type = NULL, auth_id = NULL');
      await database.pool.query('UPDATE entities SET changed_by_type = NULL, changed_by = NULL');
      for (const projection of [projections.command_log, projections.entities]) {
        await rebuildProjection({ pool: database.pool, kafka, names: t.names, logger: testLogger, projection, retry: { initialMs: 100, maxMs: 1000 } });
      }
      expect(await auditRows(database.pool, commandIds)).toEqual(expected);
      const indexes = await database.pool.query<{ indexname: string }>("SELECT indexname FROM pg_indexes WHERE tablename = 'command_log' ORDER BY 1");
      expect(indexes.rows.map((row) => row.indexname)).toContain('command_log_auth');
    } finally {
      expect(await worker.stop()).toBe(0);
    }
  });
});
