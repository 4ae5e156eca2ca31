import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import {
  createEvent,
  microsFromDate,
  newId,
  sourceVersions,
  topics,
  validateEvent,
  type Envelope,
  type GithubIssue,
  type TopicSpec,
} from '@switchyard/events';
import { test } from '@switchyard/testkit';
import type pg from 'pg';
import { describe, expect } from 'vitest';

// docs/projections.md against a real database: its column lists against the migrated schema, and every ```sql block
// run against a database migrated with the sync worker's migrate() and filled through the projections' own code.

const root = fileURLToPath(new URL('..', import.meta.url));
const doc = readFileSync(join(root, 'docs/projections.md'), 'utf8');

interface PositionedEvent {
  readonly event: Envelope;
  readonly topic: string;
  readonly partition: number;
  readonly offset: string;
}

interface Projection {
  readonly name: string;
  readonly topics: readonly TopicSpec[];
  readonly tables: Readonly<Record<string, string>>;
  statements(events: readonly PositionedEvent[], tables: Readonly<Record<string, string>>): { text: string; values: readonly unknown[] }[];
}

/** The sync worker's own modules, loaded at run time (the test project references packages only). */
async function syncWorker(): Promise<{ migrate: (pool: pg.Pool) => Promise<unknown>; projections: Record<string, Projection> }> {
  const load = (path: string) => import(pathToFileURL(join(root, 'services/sync-worker/src', path)).href);
  const { migrate } = (await load('migrate.ts')) as { migrate: (pool: pg.Pool) => Promise<unknown> };
  const { projections } = (await load('projections/index.ts')) as { projections: Record<string, Projection> };
  return { migrate, projections };
}

/** `### \`name\`` sections of "Tables and views" → their `| \`column\` | type | meaning |` rows, in order. */
function documentedRelations(): Map<string, { column: string; type: string }[]> {
  const section = doc.slice(doc.indexOf('## Tables and views'), doc.indexOf('\n## ', doc.indexOf('## Tables and views') + 1));
  const relations = new Map<string, { column: string; type: string }[]>();
  let current: { column: string; type: string }[] | undefined;
  for (const line of section.split('\n')) {
    const heading = /^### `([a-z_]+)`/.exec(line);
    if (heading) {
      current = [];
      relations.set(heading[1]!, current);
      continue;
    }
    const row = /^\| `([a-z_]+)` \| ([^|]+) \|/.exec(line);
    if (row && current) current.push({ column: row[1]!, type: row[2]!.trim() });
  }
  return relations;
}

function sqlBlocks(): string[] {
  return [...doc.matchAll(/```sql\n([\s\S]*?)```/g)].map((match) => match[1]!.trim());
}

// ---- seed data: the values the examples in projections.md look for ----

const CORRELATION_ID = '0196c0de-5a1e-7a3b-9c4d-2e8f6a1b3c5d';
const REPOSITORY = 'acme/widgets';
const minutesAgo = (minutes: number) => new Date(Date.now() - minutes * 60_000);
const isoSeconds = (date: Date) => `${date.toISOString().slice(0, 19)}Z`;

function decoded(topic: TopicSpec, event: unknown): Envelope {
  const result = validateEvent(topic, event);
  if (!result.ok) throw new Error(`seed event does not match the catalog: ${result.error.message}`);
  return result.event as Envelope;
}

function issue(number: number, fields: { title: string; state: 'open' | 'closed'; labels: string[]; changed: Date }): GithubIssue {
  return {
    id: 1000 + number,
    number,
    title: fields.title,
    body: null,
    state: fields.state,
    state_reason: fields.state === 'closed' ? 'completed' : null,
    labels: fields.labels.map((name) => ({ name })),
    user: { login: 'octocat', id: 583231 },
    comments: 0,
    html_url: `https://github.com/${REPOSITORY}/issues/${number}`,
    repository_url: `https://api.github.com/repos/${REPOSITORY}`,
    created_at: isoSeconds(minutesAgo(60)),
    updated_at: isoSeconds(fields.changed),
    closed_at: fields.state === 'closed' ? isoSeconds(fields.changed) : null,
  };
}

/** The key the seeded commands were sent with, so the audit queries find who sent them. */
const SEED_AUTH = { type: 'api_key', id: 'sy_5eed5eed5eed5eed' } as const;

function entityEvent(
  change: 'upserted' | 'deleted',
  entity: { source: string; entityType: string; entityId: string },
  state: unknown,
  version: string,
  origin: { kind: 'webhook' | 'poll' | 'command'; id: string; connection: string },
  time: Date,
): Envelope {
  return decoded(
    topics.entities,
    createEvent({
      type: `${entity.source}.${entity.entityType}.${change}`,
      source: 'switchyard/test',
      subject: `${entity.source}:${entity.entityType}:${entity.entityId}`,
      time,
      entityVersion: version,
      data: { ...entity, version, origin, state },
    }),
  );
}

function entityEvents(): Envelope[] {
  const github = (number: number) => ({ source: 'github', entityType: 'issue', entityId: `${REPOSITORY}#${number}` });
  const githubVersion = (state: GithubIssue, observed: Date) => sourceVersions.githubIssue(state, microsFromDate(observed));
  const one = issue(1, { title: 'Widget jams', state: 'open', labels: ['bug'], changed: minutesAgo(20) });
  const two = issue(2, { title: 'Paint the widgets blue', state: 'closed', labels: ['enhancement'], changed: minutesAgo(15) });
  const three = issue(3, { title: 'Duplicate of #1', state: 'open', labels: [], changed: minutesAgo(30) });
  const customerCreated = Math.floor(minutesAgo(50).getTime() / 1000);
  const customer = { id: 'cus_Q1w2e3r4t5y6', object: 'customer', created: customerCreated, email: 'ops@example.com', name: 'Acme Ops', livemode: false, metadata: {} };
  const intent = {
    id: 'pi_3Q1w2e3r4t5y6u7',
    object: 'payment_intent',
    amount: 4200,
    currency: 'eur',
    status: 'requires_action',
    customer: customer.id,
    created: customerCreated + 60,
    livemode: false,
    metadata: {},
  };
  const ts = `${Math.floor(minutesAgo(5).getTime() / 1000)}.000100`;
  const message = { channel: 'C0123456789', ts, text: 'The widgets jam again', user: 'U0123ABCD' };
  const observed = minutesAgo(1);
  return [
    entityEvent('upserted', github(1), one, githubVersion(one, minutesAgo(19)), { kind: 'command', id: CORRELATION_ID, connection: 'github' }, minutesAgo(19)),
    entityEvent('upserted', github(2), two, githubVersion(two, minutesAgo(14)), { kind: 'command', id: 'cmd-close-2', connection: 'github' }, minutesAgo(14)),
    entityEvent('upserted', github(3), three, githubVersion(three, minutesAgo(29)), { kind: 'poll', id: 'poll-1', connection: 'github' }, minutesAgo(29)),
    entityEvent(
      'deleted',
      github(3),
      null,
      sourceVersions.deletion(microsFromDate(minutesAgo(10)), microsFromDate(minutesAgo(10))),
      { kind: 'webhook', id: 'delivery-3', connection: 'github' },
      minutesAgo(10),
    ),
    entityEvent(
      'upserted',
      { source: 'stripe', entityType: 'customer', entityId: customer.id },
      customer,
      sourceVersions.stripe(customerCreated, microsFromDate(observed)),
      { kind: 'webhook', id: 'evt_1', connection: 'stripe' },
      observed,
    ),
    entityEvent(
      'upserted',
      { source: 'stripe', entityType: 'payment_intent', entityId: intent.id },
      intent,
      sourceVersions.stripe(intent.created, microsFromDate(observed)),
      { kind: 'webhook', id: 'evt_2', connection: 'stripe' },
      observed,
    ),
    entityEvent(
      'upserted',
      { source: 'slack', entityType: 'message', entityId: `${message.channel}/${ts}` },
      message,
      sourceVersions.slackMessage(message, microsFromDate(observed)),
      { kind: 'webhook', id: 'slack-1', connection: 'slack' },
      observed,
    ),
  ];
}

interface SeedCommand {
  readonly id: string;
  readonly type: 'github.issue.create' | 'github.issue.update';
  readonly target: string;
  readonly connection: string;
  readonly input: Record<string, unknown>;
  readonly correlationId: string;
  readonly at: number;
  /** Results after the command: status, minutes after it, and the outcome. */
  readonly results: { status: 'accepted' | 'succeeded' | 'failed' | 'rejected'; entity?: number; error?: { code: string; field?: string } }[];
}

function commandEvents(): { commands: Envelope[]; results: Envelope[] } {
  const repoTarget = `github:repository:${REPOSITORY}`;
  const issueTarget = (number: number) => `github:issue:${REPOSITORY}#${number}`;
  const seeds: SeedCommand[] = [
    {
      id: CORRELATION_ID,
      type: 'github.issue.create',
      target: repoTarget,
      connection: 'github',
      input: { owner: 'acme', repo: 'widgets', title: 'Widget jams', labels: ['bug'] },
      correlationId: CORRELATION_ID,
      at: 20,
      results: [{ status: 'accepted' }, { status: 'succeeded', entity: 1 }],
    },
    {
      id: newId(),
      type: 'github.issue.update',
      target: issueTarget(1),
      connection: 'github',
      input: { owner: 'acme', repo: 'widgets', number: 1, assignees: ['ghost'] },
      correlationId: CORRELATION_ID,
      at: 18,
      results: [{ status: 'accepted' }, { status: 'failed', error: { code: 'AGW_UPSTREAM_VALIDATION_FAILED', field: 'data.input.assignees' } }],
    },
    {
      id: 'cmd-close-2',
      type: 'github.issue.update',
      target: issueTarget(2),
      connection: 'github',
      input: { owner: 'acme', repo: 'widgets', number: 2, state: 'closed' },
      correlationId: 'cmd-close-2',
      at: 15,
      results: [{ status: 'accepted' }, { status: 'succeeded', entity: 2 }],
    },
    {
      id: newId(),
      type: 'github.issue.create',
      target: repoTarget,
      connection: 'gitlab',
      input: { owner: 'acme', repo: 'widgets', title: 'Wrong connection' },
      correlationId: newId(),
      at: 12,
      results: [{ status: 'rejected', error: { code: 'AGW_CONNECTION_INVALID', field: 'data.connection' } }],
    },
    {
      id: newId(),
      type: 'github.issue.update',
      target: issueTarget(1),
      connection: 'github',
      input: { owner: 'acme', repo: 'widgets', number: 1, title: 'Widgets jam when cold' },
      correlationId: newId(),
      at: 10,
      results: [],
    },
  ];
  const commands: Envelope[] = [];
  const results: Envelope[] = [];
  for (const seed of seeds) {
    commands.push(
      decoded(
        topics.commands,
        createEvent({
          id: seed.id,
          type: seed.type,
          source: 'switchyard/test',
          subject: seed.target,
          time: minutesAgo(seed.at),
          correlationId: seed.correlationId,
          auth: SEED_AUTH,
          data: { connection: seed.connection, idempotencyKey: seed.id, input: seed.input },
        }),
      ),
    );
    seed.results.forEach((result, index) => {
      const entityId = result.entity === undefined ? undefined : `${REPOSITORY}#${result.entity}`;
      const data: Record<string, unknown> = { commandId: seed.id, commandType: seed.type, status: result.status };
      if (result.status !== 'accepted') data['durationMs'] = 180;
      if (result.status === 'succeeded' || result.status === 'failed') data['attempts'] = 1;
      if (entityId !== undefined) {
        const version = sourceVersions.githubIssue({ updated_at: isoSeconds(minutesAgo(seed.at)) }, microsFromDate(minutesAgo(seed.at - 1)));
        data['entity'] = { key: `github:issue:${entityId}`, source: 'github', entityType: 'issue', entityId, version };
      }
      if (result.error !== undefined) data['error'] = { ...result.error, message: `seeded ${result.error.code}`, retriable: false };
      results.push(
        decoded(
          topics.commandResults,
          createEvent({
            type: `switchyard.command.${result.status}`,
            source: 'switchyard/test',
            subject: seed.target,
            time: new Date(minutesAgo(seed.at).getTime() + (index + 1) * 1000),
            correlationId: seed.correlationId,
            causationId: seed.id,
            auth: SEED_AUTH,
            data,
          }),
        ),
      );
    });
  }
  return { commands, results };
}

function healthEvents(): Envelope[] {
  const changes = [
    { status: 'up', previous: 'unknown', minutes: 180, reason: null, httpStatus: 200, failures: 0 },
    { status: 'degraded', previous: 'up', minutes: 120, reason: 'slow', httpStatus: 200, failures: 0 },
    { status: 'down', previous: 'degraded', minutes: 90, reason: 'http_503', httpStatus: 503, failures: 2 },
    { status: 'up', previous: 'down', minutes: 60, reason: null, httpStatus: 200, failures: 0 },
  ];
  return changes.map((change) =>
    decoded(
      topics.apiHealth,
      createEvent({
        type: 'switchyard.api.health_changed',
        source: 'switchyard/test',
        subject: 'github',
        time: minutesAgo(change.minutes),
        data: {
          api: 'github',
          status: change.status,
          previous: change.previous,
          since: minutesAgo(change.minutes).toISOString(),
          checkedAt: minutesAgo(change.minutes).toISOString(),
          latencyMs: change.reason === 'slow' ? 1450 : 35,
          httpStatus: change.httpStatus,
          reason: change.reason,
          consecutiveFailures: change.failures,
        },
      }),
    ),
  );
}

async function applyAll(pool: pg.Pool, projection: Projection, topic: TopicSpec, events: readonly Envelope[]): Promise<void> {
  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    const positioned = events.map((event, offset) => ({ event, topic: `switchyard.${topic.name}`, partition: 0, offset: String(offset) }));
    for (const statement of projection.statements(positioned, projection.tables)) await client.query(statement.text, [...statement.values]);
    await client.query('COMMIT');
  } finally {
    client.release();
  }
}

async function seed(pool: pg.Pool, projections: Record<string, Projection>): Promise<void> {
  const { commands, results } = commandEvents();
  await applyAll(pool, projections['entities']!, topics.entities, entityEvents());
  await applyAll(pool, projections['command_log']!, topics.commands, commands);
  await applyAll(pool, projections['command_log']!, topics.commandResults, results);
  await applyAll(pool, projections['api_health']!, topics.apiHealth, healthEvents());
  for (const [projection, topic] of [
    ['entities', topics.entities],
    ['command_log', topics.commands],
    ['command_log', topics.commandResults],
    ['api_health', topics.apiHealth],
  ] as const) {
    for (let partition = 0; partition < topic.partitions; partition += 1) {
      await pool.query('INSERT INTO sync_offsets (projection, topic, partition, next_offset) VALUES ($1, $2, $3, $4)', [
        projection,
        `switchyard.${topic.name}`,
        partition,
        partition === 0 ? 12 : 0,
      ]);
    }
  }
  await pool.query(
    `INSERT INTO projection_rebuilds (projection, command_id, status, started_at, finished_at, events)
     VALUES ('entities', NULL, 'succeeded', now() - interval '1 day', now() - interval '1 day' + interval '4 seconds', 7)`,
  );
}

function normalizedType(row: { data_type: string; udt_name: string }): string {
  if (row.data_type === 'timestamp with time zone') return 'timestamptz';
  if (row.data_type === 'ARRAY') return `${row.udt_name.replace(/^_/, '')}[]`;
  return row.data_type;
}

describe('docs/projections.md', () => {
  test('documents every table and view of the migrated schema with its columns and types, in order', async ({ database }) => {
    const { migrate } = await syncWorker();
    await migrate(database.pool);
    const { rows } = await database.pool.query<{ table_name: string; column_name: string; data_type: string; udt_name: string }>(
      `SELECT table_name, column_name, data_type, udt_name FROM information_schema.columns
        WHERE table_schema = 'public' ORDER BY table_name, ordinal_position`,
    );
    const actual = new Map<string, { column: string; type: string }[]>();
    for (const row of rows) {
      const columns = actual.get(row.table_name) ?? [];
      columns.push({ column: row.column_name, type: normalizedType(row) });
      actual.set(row.table_name, columns);
    }
    const documented = documentedRelations();
    expect([...documented.keys()].sort()).toEqual([...actual.keys()].sort());
    for (const [table, columns] of actual) expect(documented.get(table), `columns of ${table}`).toEqual(columns);
  });

  test('every example query runs and finds rows in a migrated database filled through the projections', async ({ database }) => {
    const { migrate, projections } = await syncWorker();
    await migrate(database.pool);
    await seed(database.pool, projections);
    const blocks = sqlBlocks();
    expect(blocks.length).toBeGreaterThan(5);
    const client = await database.pool.connect();
    try {
      for (const sql of blocks) {
        await client.query('BEGIN');
        let rows: number | null;
        try {
          rows = (await client.query(sql)).rowCount;
        } catch (error) {
          throw new Error(`example query failed: ${(error as Error).message}\n${sql}`, { cause: error });
        } finally {
          await client.query('ROLLBACK');
        }
        expect(rows, `no rows (extend the seed in this test if the query is right):\n${sql}`).toBeGreaterThan(0);
      }
    } finally {
      client.release();
    }
  });
});
