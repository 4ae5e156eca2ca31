import { BatchAnswer, CommandStatusView, ErrorBody } from '@switchyard/api';
import { commandCatalog, topics as catalog } from '@switchyard/events';
import { test } from '@switchyard/testkit';
import fc from 'fast-check';
import { describe, expect } from 'vitest';
import { postCommand, startAdapter } from './harness.js';

/** The command API as a client uses it: status, waiting for the result, batches, and refusals that name the field. */

const create = (title: string) => ({ type: 'github.issue.create', input: { owner: 'acme', repo: 'widgets', title } });

async function getStatus(adapter: { url: string; headers: Record<string, string> }, id: string) {
  const response = await fetch(`${adapter.url}/v1/commands/${encodeURIComponent(id)}`, { headers: adapter.headers });
  return { status: response.status, body: (await response.json()) };
}

describe('the command API', () => {
  test('GET /v1/commands/:id tells status, timeline, entity and error; wait=result answers with the finished command', async ({ brokers, topics }) => {
    const adapter = await startAdapter({ brokers, topics });
    try {
      const waited = await postCommand(adapter, create('wait for me'), {}, '?wait=result&timeout=10s');
      expect(waited.status).toBe(200);
      const view = CommandStatusView.parse(waited.body);
      expect(view).toMatchObject({
        type: 'github.issue.create',
        target: 'github:repository:acme/widgets',
        status: 'succeeded',
        finished: true,
        attempts: 1,
        entity: { key: 'github:issue:acme/widgets#1', entityId: 'acme/widgets#1', position: { partition: expect.any(Number), offset: expect.any(String) } },
      });
      expect(view.timeline.map((entry) => entry.status)).toEqual(['submitted', 'accepted', 'succeeded']);
      expect(view.timeline[1]?.attempt).toBe(1);

      // Any instance answers from Kafka: the same view by GET.
      const got = await getStatus(adapter, view.commandId);
      expect(got.status).toBe(200);
      expect(CommandStatusView.parse(got.body)).toEqual(view);

      // A failure carries its error; wait=projected with no entity to project ends with the result.
      const failed = await postCommand(adapter, { type: 'github.issue.update', input: { owner: 'acme', repo: 'widgets', number: 99, state: 'closed' } }, {}, '?wait=projected&timeout=5s');
      expect(failed.status).toBe(200);
      expect(CommandStatusView.parse(failed.body)).toMatchObject({ status: 'failed', finished: true, error: { code: 'AGW_UPSTREAM_NOT_FOUND', retriable: false } });

      // Not finished within the timeout: 202 with the receipt, and the status says where it is.
      adapter.sim.control.setLatency(1500);
      const slow = await postCommand(adapter, create('slow'), {}, '?wait=result&timeout=200ms');
      expect(slow.status).toBe(202);
      expect(Object.keys(slow.body).sort()).toEqual(['commandId', 'correlationId', 'target', 'type']);
      const meanwhile = CommandStatusView.parse((await getStatus(adapter, String(slow.body['commandId']))).body);
      expect(meanwhile.finished).toBe(false);
      expect(['submitted', 'accepted']).toContain(meanwhile.status);
      adapter.sim.control.setLatency(0);

      const unknown = await getStatus(adapter, '01a2b3c4-0000-7000-8000-000000000000');
      expect(unknown).toEqual({ status: 404, body: { error: { code: 'AGW_COMMAND_NOT_FOUND', field: 'id', message: expect.any(String), retriable: false } } });
      for (const query of ['?wait=soon', '?wait=result&timeout=forever', '?wait=result&timeout=120s', '?timeout=1s']) {
        const refused = await postCommand(adapter, create('x'), {}, query);
        expect(refused.status, query).toBe(400);
        expect(ErrorBody.parse(refused.body).error).toMatchObject({ code: 'AGW_REQUEST_INVALID', field: query.includes('wait=soon') ? 'wait' : 'timeout' });
      }
    } finally {
      adapter.sim.control.setLatency(0);
      await adapter.stop();
    }
  });

  test('POST /v1/commands:batch: a receipt or an error per command, in order; keys named per item or by the batch key', async ({ brokers, topics, collect }) => {
    const adapter = await startAdapter({ brokers, topics });
    try {
      const commands = await collect(catalog.commands);
      const batch = {
        commands: [
          create('one'),
          { type: 'github.issue.create', input: { owner: 'acme', repo: 'widgets' } },
          { ...create('two'), idempotencyKey: 'own-key' },
          { type: 'no.such.type', input: {} },
          create('three'),
        ],
      };
      const send = async (body: unknown, headers: Record<string, string> = {}) => {
        const response = await fetch(`${adapter.url}/v1/commands:batch`, { method: 'POST', headers: { 'content-type': 'application/json', ...adapter.headers, ...headers }, body: JSON.stringify(body) });
        return { status: response.status, body: (await response.json()) };
      };
      const answer = await send(batch, { 'idempotency-key': 'batch-1' });
      expect(answer.status).toBe(200);
      const { results } = BatchAnswer.parse(answer.body);
      expect(results.map((item) => item.status)).toEqual([202, 400, 202, 400, 202]);
      expect(results[1]).toMatchObject({ ok: false, error: { code: 'AGW_COMMAND_INPUT_INVALID', field: 'commands[1].input.title' } });
      expect(results[3]).toMatchObject({ ok: false, error: { code: 'AGW_COMMAND_TYPE_INVALID', field: 'commands[3].type' } });
      const receipts = results.flatMap((item) => (item.ok ? [item.receipt] : []));
      expect(new Set(receipts.map((receipt) => receipt.commandId)).size).toBe(3);

      // The same batch again: the same receipts, nothing new written.
      const again = BatchAnswer.parse((await send(batch, { 'idempotency-key': 'batch-1' })).body);
      expect(again.results.flatMap((item) => (item.ok ? [item.receipt.commandId] : []))).toEqual(receipts.map((receipt) => receipt.commandId));
      await new Promise((resolve) => setTimeout(resolve, 500));
      expect(commands.events.filter((event) => receipts.some((receipt) => receipt.commandId === event.id))).toHaveLength(3);

      for (const [body, field] of [
        [{ commands: [] }, 'commands'],
        [{ commands: Array.from({ length: 101 }, () => create('x')) }, 'commands'],
        [{ commands: [create('x')], extra: 1 }, 'body'],
        [[create('x')], 'body'],
      ] as const) {
        const refused = await send(body);
        expect(refused.status).toBe(400);
        expect(ErrorBody.parse(refused.body).error).toMatchObject({ code: 'AGW_REQUEST_INVALID', field });
      }
    } finally {
      await adapter.stop();
    }
  });

  test('any body and headers: never a crash, every refusal a 4xx that names the field', { timeout: 120000 }, async ({ brokers, topics }) => {
    const adapter = await startAdapter({ brokers, topics });
    try {
      const known = Object.keys(commandCatalog);
      const input = fc.oneof(
        fc.jsonValue(),
        fc.record({ owner: fc.constantFrom('acme', 'a b', '', 'x'.repeat(101)), repo: fc.constantFrom('widgets', '../etc'), title: fc.oneof(fc.string(), fc.integer()) }, { requiredKeys: [] }),
      );
      const title = fc.string({ minLength: 1, maxLength: 60 }).filter((text) => text.trim() !== '' || text.length > 0);
      const valid = fc.record(
        {
          type: fc.constant('github.issue.create'),
          input: fc.record({ owner: fc.constant('acme'), repo: fc.constant('widgets'), title }),
          correlationId: fc.string({ minLength: 1, maxLength: 200 }),
          idempotencyKey: fc.uuid(),
        },
        { requiredKeys: ['type', 'input'] },
      );
      const body = fc.oneof(
        { weight: 3, arbitrary: valid },
        {
          weight: 3,
          arbitrary: fc.record(
            {
              type: fc.oneof(fc.constantFrom(...known), fc.string()),
              input,
              connection: fc.oneof(fc.constant('github'), fc.string()),
              idempotencyKey: fc.oneof(fc.uuid(), fc.string({ maxLength: 300 })),
              correlationId: fc.string({ maxLength: 250 }),
            },
            { requiredKeys: [] },
          ),
        },
        { weight: 1, arbitrary: fc.dictionary(fc.string(), fc.jsonValue()) },
        { weight: 1, arbitrary: fc.jsonValue() },
      );
      const headers = fc.record(
        {
          'idempotency-key': fc.oneof(fc.uuid(), fc.string({ maxLength: 300 }).filter((text) => /^[\x20-\x7e]*$/.test(text))),
          traceparent: fc.oneof(fc.constant('00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01'), fc.string({ maxLength: 60 }).filter((text) => /^[\x20-\x7e]*$/.test(text))),
        },
        { requiredKeys: [] },
      );
      let accepted = 0;
      let refused = 0;
      await fc.assert(
        fc.asyncProperty(body, headers, async (payload, extra) => {
          const answer = await postCommand(adapter, JSON.stringify(payload), extra);
          if (answer.status === 202) {
            accepted += 1;
            expect(typeof answer.body['commandId']).toBe('string');
            return;
          }
          refused += 1;
          expect(answer.status, JSON.stringify(answer.body)).toBeGreaterThanOrEqual(400);
          expect(answer.status, JSON.stringify(answer.body)).toBeLessThan(500);
          const { error } = ErrorBody.parse(answer.body);
          expect(error.code).toMatch(/^(AGW|RT|AUTH)_[A-Z_]+$/);
          // The field is named: `body` when the body itself is not an object.
          expect(error.field, JSON.stringify({ payload, error })).toBeTypeOf('string');
          expect(error.field).not.toBe('');
          if (error.field === 'body') expect(typeof payload === 'object' && payload !== null && !Array.isArray(payload)).toBe(false);
        }),
        { numRuns: 300 },
      );
      console.log(`[fuzz] 300 submissions: ${accepted} accepted, ${refused} refused, each with its field`);
      expect(refused).toBeGreaterThan(50);
      // The generator reaches both paths: valid commands are taken, not only refusals checked.
      expect(accepted).toBeGreaterThan(10);
      const ready = await fetch(`${adapter.url}/readyz`);
      expect(ready.status).toBe(200);
    } finally {
      await adapter.stop();
    }
  });
});
