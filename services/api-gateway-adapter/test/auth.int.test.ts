import { ErrorBody } from '@switchyard/api';
import { mintKey } from '@switchyard/auth';
import { topics as catalog } from '@switchyard/events';
import { test } from '@switchyard/testkit';
import fc from 'fast-check';
import { describe, expect } from 'vitest';
import { postCommand, publishKey, startAdapter, type AdapterHarness } from './harness.js';

/** Keys at the command API: whose commands a key may read, which types it may send, its budget, key management. */

const create = (title: string) => ({ type: 'github.issue.create', input: { owner: 'acme', repo: 'widgets', title } });

async function call(adapter: AdapterHarness, method: string, path: string, headers: Record<string, string>, body?: unknown) {
  const response = await fetch(`${adapter.url}${path}`, {
    method,
    headers: { ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...headers },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  return { status: response.status, headers: response.headers, body: (await response.json()) as Record<string, unknown> };
}

describe('API keys at the command API', () => {
  test("a key reads its own commands' status; another key's command is a 404 like an unknown id, unless it may read all", async ({ brokers, topics }) => {
    const [other, auditor] = await Promise.all([
      publishKey(brokers, topics, ['commands:send:**', 'commands:read']),
      publishKey(brokers, topics, ['commands:read:all']),
    ]);
    const adapter = await startAdapter({ brokers, topics });
    try {
      const sent = await postCommand(adapter, create('mine'), {}, '?wait=result');
      expect(sent.status).toBe(200);
      const id = String(sent.body['commandId']);
      const own = await call(adapter, 'GET', `/v1/commands/${id}`, adapter.headers);
      expect(own.status).toBe(200);
      expect(own.body).toMatchObject({ commandId: id, status: 'succeeded', submittedBy: adapter.key.keyId });

      const foreign = await call(adapter, 'GET', `/v1/commands/${id}`, other.headers);
      const unknownId = '01a2b3c4-0000-7000-8000-000000000000';
      const unknown = await call(adapter, 'GET', `/v1/commands/${unknownId}`, other.headers);
      expect(foreign.status).toBe(404);
      expect(unknown.status).toBe(404);
      expect(ErrorBody.parse(foreign.body).error.code).toBe('AGW_COMMAND_NOT_FOUND');
      // The same answer but for the id: nothing tells a foreign command from none.
      expect(JSON.stringify(foreign.body).replace(id, 'ID')).toBe(JSON.stringify(unknown.body).replace(unknownId, 'ID'));

      const audited = await call(adapter, 'GET', `/v1/commands/${id}`, auditor.headers);
      expect(audited.status).toBe(200);
      expect(audited.body).toMatchObject({ commandId: id, submittedBy: adapter.key.keyId });
      // The auditor may read but not send.
      const auditorSends = await postCommand(adapter, create('nope'), auditor.headers);
      expect(auditorSends.status).toBe(403);
      expect(auditorSends.body).toMatchObject({ error: { code: 'AUTH_SCOPE_MISSING' } });
    } finally {
      await adapter.stop();
    }
  });

  test('commands:send patterns allow exactly their types, per command and per batch item', async ({ brokers, topics }) => {
    const creator = await publishKey(brokers, topics, ['commands:send:github.issue.create']);
    const adapter = await startAdapter({ brokers, topics });
    try {
      const created = await postCommand(adapter, create('ok'), creator.headers);
      expect(created.status).toBe(202);
      const update = { type: 'github.issue.update', input: { owner: 'acme', repo: 'widgets', number: 1, state: 'closed' } };
      const refused = await postCommand(adapter, update, creator.headers);
      expect({ status: refused.status, body: refused.body }).toEqual({
        status: 403,
        body: {
          error: { code: 'AUTH_SCOPE_MISSING', field: 'type', message: `type: key ${creator.keyId} lacks the scope commands:send:github.issue.update`, retriable: false },
        },
      });
      const batch = await call(adapter, 'POST', '/v1/commands:batch', creator.headers, { commands: [create('a'), update, create('b')] });
      expect(batch.status).toBe(200);
      const results = batch.body['results'] as { ok: boolean; status: number; error?: { code: string; field: string } }[];
      expect(results.map((result) => [result.ok, result.status])).toEqual([
        [true, 202],
        [false, 403],
        [true, 202],
      ]);
      expect(results[1]!.error).toMatchObject({ code: 'AUTH_SCOPE_MISSING', field: 'commands[1].type' });
      // Without commands:read, not even its own command's status.
      const status = await call(adapter, 'GET', `/v1/commands/${String(created.body['commandId'])}`, creator.headers);
      expect(status.status).toBe(403);
      expect(status.body).toMatchObject({ error: { code: 'AUTH_SCOPE_MISSING', message: `key ${creator.keyId} lacks the scope commands:read` } });
    } finally {
      await adapter.stop();
    }
  });

  test('a key over its budget gets 429 with Retry-After and RateLimit headers; another key is unaffected; it recovers', async ({ brokers, topics }) => {
    const limited = await publishKey(brokers, topics, ['commands:send:**'], { limits: { commandsPerSecond: 2, burst: 3 } });
    const adapter = await startAdapter({ brokers, topics }, { env: { COMMAND_RATE_PER_SECOND: '100', COMMAND_RATE_BURST: '100' } });
    try {
      const answers = [];
      for (let index = 0; index < 4; index += 1) answers.push(await postCommand(adapter, create(`limited ${index}`), limited.headers));
      expect(answers.map((answer) => answer.status)).toEqual([202, 202, 202, 429]);
      expect(answers[0]!.headers.get('ratelimit-limit')).toBe('3');
      expect(answers[0]!.headers.get('ratelimit-remaining')).toBe('2');
      expect(answers[2]!.headers.get('ratelimit-remaining')).toBe('0');
      const refused = answers[3]!;
      expect(refused.body).toMatchObject({ error: { code: 'AUTH_RATE_LIMITED', retriable: true } });
      // One token at 2 per second: at most half a second away, rounded up to whole seconds.
      expect(refused.headers.get('retry-after')).toBe('1');
      expect(refused.headers.get('ratelimit-policy')).toBe('3;w=2');

      // Another key, the harness's, has its own bucket (the service default here).
      const other = await postCommand(adapter, create('other key'));
      expect(other.status).toBe(202);
      expect(other.headers.get('ratelimit-limit')).toBe('100');

      // A batch counts one per command: 3 at once is the whole burst, refused while the bucket is not full.
      const batch = await call(adapter, 'POST', '/v1/commands:batch', limited.headers, { commands: [create('b1'), create('b2'), create('b3')] });
      expect(batch.status).toBe(429);

      await new Promise((resolve) => setTimeout(resolve, Number(refused.headers.get('retry-after')) * 1000));
      const again = await postCommand(adapter, create('after the wait'), limited.headers);
      expect(again.status).toBe(202);
    } finally {
      await adapter.stop();
    }
  });

  test('an admin creates, lists and revokes keys over HTTP; a created key works at once and a revoked one at once no more', async ({ brokers, topics }) => {
    const admin = await publishKey(brokers, topics, ['admin']);
    const adapter = await startAdapter({ brokers, topics });
    try {
      const notAdmin = await call(adapter, 'POST', '/v1/keys', adapter.headers, { name: 'x', scopes: ['admin'] });
      expect(notAdmin.status).toBe(403);
      expect(notAdmin.body).toMatchObject({ error: { code: 'AUTH_SCOPE_MISSING', message: `key ${adapter.key.keyId} lacks the scope admin` } });

      const invalid = await call(adapter, 'POST', '/v1/keys', admin.headers, { name: 'ci', scopes: ['commands:send:github.*.up*'] });
      expect(invalid.status).toBe(400);
      expect(invalid.body).toMatchObject({ error: { code: 'AUTH_KEY_INVALID', field: 'scopes[0]' } });

      const created = await call(adapter, 'POST', '/v1/keys', admin.headers, { name: 'ci', scopes: ['commands:send:github.issue.*', 'commands:read'] });
      expect(created.status).toBe(201);
      const key = String(created.body['key']);
      const keyId = String(created.body['keyId']);
      expect(key.startsWith(`${keyId}_`)).toBe(true);
      expect(created.headers.get('location')).toBe(`/v1/keys/${keyId}`);
      expect(created.body).toMatchObject({ name: 'ci', scopes: ['commands:send:github.issue.*', 'commands:read'], createdBy: admin.keyId, revoked: false });
      expect(created.body).not.toHaveProperty('hash');

      const used = await postCommand(adapter, create('with a new key'), { authorization: `Bearer ${key}` });
      expect(used.status).toBe(202);

      const listed = await call(adapter, 'GET', '/v1/keys', admin.headers);
      const ids = (listed.body['keys'] as { keyId: string }[]).map((entry) => entry.keyId);
      expect(ids).toEqual(expect.arrayContaining([keyId, admin.keyId, adapter.key.keyId]));
      expect(JSON.stringify(listed.body)).not.toContain('"hash"');
      expect(JSON.stringify(listed.body)).not.toContain(key.slice(keyId.length + 1));

      const revoked = await call(adapter, 'DELETE', `/v1/keys/${keyId}`, admin.headers);
      expect(revoked.status).toBe(200);
      expect(revoked.body).toMatchObject({ keyId, revoked: true, revokedBy: admin.keyId });
      const refused = await postCommand(adapter, create('revoked'), { authorization: `Bearer ${key}` });
      expect(refused.status).toBe(401);
      expect(refused.headers.get('www-authenticate')).toMatch(/^Bearer /);
      expect(refused.body).toMatchObject({ error: { code: 'AUTH_KEY_REVOKED' } });
      expect(JSON.stringify(refused.body)).not.toContain(key.slice(keyId.length + 1));

      const missing = await call(adapter, 'GET', '/v1/keys/sy_0000000000000000', admin.headers);
      expect(missing.status).toBe(404);
      expect(missing.body).toMatchObject({ error: { code: 'AUTH_KEY_NOT_FOUND', field: 'id' } });
    } finally {
      await adapter.stop();
    }
  });

  test('any Authorization header that is not a known key: 401 with a code, never a crash, never accepted', async ({ brokers, topics, collect }) => {
    const adapter = await startAdapter({ brokers, topics });
    const commands = await collect(catalog.commands);
    try {
      const known = adapter.key;
      const wrongSecret = `${known.keyId}_${mintKey().key.slice(20)}`;
      const header = fc.oneof(
        fc.string({ maxLength: 200 }).filter((text) => /^[\x20-\x7e]*$/.test(text)),
        fc.string({ maxLength: 80 }).filter((text) => /^[\x21-\x7e]*$/.test(text)).map((text) => `Bearer ${text}`),
        fc.constantFrom('Bearer', 'Bearer ', 'Basic dXNlcjpwYXNz', `bearer  ${wrongSecret}`, `Bearer ${known.key}x`, `Bearer ${known.key.slice(0, -1)}`, `Token ${known.key}`),
        fc.tuple(fc.stringMatching(/^[0-9a-f]{16}$/), fc.stringMatching(/^[A-Za-z0-9_-]{43}$/)).map(([id, secret]) => `Bearer sy_${id}_${secret}`),
      );
      const codes = new Map<string, number>();
      await fc.assert(
        fc.asyncProperty(header, async (authorization) => {
          const answer = await postCommand(adapter, create('never'), { authorization });
          expect(answer.status, authorization).toBe(401);
          const { error } = ErrorBody.parse(answer.body);
          expect(['AUTH_MALFORMED', 'AUTH_KEY_UNKNOWN', 'AUTH_MISSING']).toContain(error.code);
          codes.set(error.code, (codes.get(error.code) ?? 0) + 1);
        }),
        { numRuns: 300 },
      );
      expect(codes.get('AUTH_KEY_UNKNOWN')).toBeGreaterThan(10);
      expect(codes.get('AUTH_MALFORMED')).toBeGreaterThan(10);
      // Still serving, and nothing was written by any of them.
      const fine = await postCommand(adapter, create('still here'));
      expect(fine.status).toBe(202);
      const withoutHeader = await call(adapter, 'POST', '/v1/commands', {}, create('no header'));
      expect(withoutHeader.status).toBe(401);
      expect(withoutHeader.body).toMatchObject({ error: { code: 'AUTH_MISSING' } });
      await commands.waitForEvent((event) => event.id === fine.body['commandId']);
      await new Promise((resolve) => setTimeout(resolve, 300));
      expect(commands.events.map((event) => event.id)).toEqual([fine.body['commandId']]);
    } finally {
      await adapter.stop();
    }
  });
});
