import { CommandStatusView } from '@switchyard/api';
import { findComponent, localUrl } from '@switchyard/infra';
import { test } from '@switchyard/testkit';
import { describe, expect, onTestFinished } from 'vitest';
import { assertBuilt } from './support/built.js';
import { bearer } from './support/http.js';
import { CLIENT_SCOPES, StackProcesses, testStack, UNLIMITED } from './support/stack.js';

/**
 * `POST /v1/commands?wait=projected` answers only once the sync worker has committed the command's entity to
 * Postgres (the adapter learns it from the projection-positions topic, never from Postgres): a SELECT sent right
 * after the answer sees the version the answer names, every time. The commands present one API key, published before
 * the services start, with a budget the run does not reach.
 */

const ROUNDS = 500;
const LANES = 4;

describe('read your writes', () => {
  test(`wait=projected ${ROUNDS} times: a SELECT right after each answer sees the new version`, { timeout: 240000 }, async ({ brokers, topics, database, keys }) => {
    const { stack } = await testStack({ brokers, topicPrefix: topics.prefix, databaseUrl: database.url }, { logLevel: 'warn' });
    assertBuilt(stack);
    const key = await keys.create(CLIENT_SCOPES, { name: 'read-your-writes client', limits: UNLIMITED });
    const processes = await StackProcesses.start(stack);
    onTestFinished(() => processes.kill());
    const api = `${localUrl(findComponent(stack, 'api-gateway-adapter'))}/v1/commands?wait=projected&timeout=20s`;

    const submit = async (body: unknown): Promise<CommandStatusView> => {
      const response = await fetch(api, { method: 'POST', headers: { 'content-type': 'application/json', ...bearer(key.key) }, body: JSON.stringify(body) });
      const answer: unknown = await response.json();
      expect(response.status, JSON.stringify(answer)).toBe(200);
      return CommandStatusView.parse(answer);
    };
    const stale: string[] = [];
    const answeredMs: number[] = [];
    let next = 0;
    await Promise.all(
      Array.from({ length: LANES }, async (_, lane) => {
        let number: number | undefined;
        while (next < ROUNDS) {
          next += 1;
          // Each lane creates its issue, then keeps editing it: every answer is a newer version of one row.
          const started = performance.now();
          const view = await submit(
            number === undefined
              ? { type: 'github.issue.create', input: { owner: 'acme', repo: 'widgets', title: `lane ${lane}` } }
              : { type: 'github.issue.update', input: { owner: 'acme', repo: 'widgets', number, body: `edit ${next}` } },
          );
          answeredMs.push(performance.now() - started);
          expect(view).toMatchObject({ status: 'succeeded', projected: true });
          const entity = view.entity!;
          number = Number(entity.entityId.split('#')[1]);
          const { rows } = await database.pool.query<{ version: string }>(
            "SELECT version FROM github_issues WHERE repository = 'acme/widgets' AND number = $1",
            [number],
          );
          if (rows[0]?.version !== entity.version) stale.push(`${entity.entityId}: answered ${entity.version}, read ${rows[0]?.version ?? 'nothing'}`);
        }
      }),
    );
    answeredMs.sort((a, b) => a - b);
    console.log(
      `[read-your-writes] ${ROUNDS} answers with wait=projected, ${LANES} at a time: p50 ${answeredMs[Math.floor(ROUNDS / 2)]!.toFixed(1)} ms, ` +
        `p99 ${answeredMs[Math.floor(ROUNDS * 0.99)]!.toFixed(1)} ms; ${stale.length} stale reads`,
    );
    expect(stale).toEqual([]);
    expect(answeredMs).toHaveLength(ROUNDS);
    await processes.stop();
  });
});
