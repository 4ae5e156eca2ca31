import { execFile } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { createEvent, topics as catalog } from '@switchyard/events';
import { assertBuilt, test, testLogger, uniqueName, waitFor } from '@switchyard/testkit';
import { describe, expect } from 'vitest';
import { Authenticator, KeyStore } from '@switchyard/auth';

const run = promisify(execFile);
const root = join(dirname(fileURLToPath(import.meta.url)), '..', 'packages', 'auth');

describe('the key store on the api-keys topic', () => {
  test('loads what is there, follows changes within a fetch, and keeps a revoked key revoked', async ({ kafka, topics, admin, keys, producer }) => {
    const early = await keys.create(['stream:**']);
    const store = new KeyStore({
      kafka,
      names: topics.names,
      admin,
      groupId: uniqueName('keys-'),
      logger: testLogger,
      onFatal: (error) => {
        throw error;
      },
    });
    const changes: string[] = [];
    store.onChange((key, previous) => changes.push(`${key.record.keyId}:${previous === undefined ? 'new' : key.record.revokedAt === undefined ? 'changed' : 'revoked'}`));
    await store.start();
    await store.loaded;
    try {
      const authenticator = new Authenticator(store);
      expect(authenticator.fromKey(early.key).keyId).toBe(early.keyId);

      const late = await keys.create(['commands:read']);
      const published = performance.now();
      await waitFor(() => store.get(late.keyId), { intervalMs: 5, what: 'the new key' });
      expect(performance.now() - published).toBeLessThan(1000);

      await keys.revoke(early);
      await waitFor(() => store.get(early.keyId)?.record.revokedAt, { intervalMs: 5, what: 'the revocation' });
      expect(() => authenticator.fromKey(early.key)).toThrow(expect.objectContaining({ code: 'AUTH_KEY_REVOKED' }));

      // An old copy of the record, without the revocation, published again does not bring the key back.
      const [again] = await producer.send(catalog.apiKeys, [
        createEvent({ type: 'switchyard.api_key.upserted', source: 'test', subject: early.keyId, data: early.record }),
      ]);
      expect(await store.seen(again!.partition, again!.offset, 5000)).toBe(true);
      expect(() => authenticator.fromKey(early.key)).toThrow(expect.objectContaining({ code: 'AUTH_KEY_REVOKED' }));
      expect(changes).toEqual([`${early.keyId}:new`, `${late.keyId}:new`, `${early.keyId}:revoked`]);
    } finally {
      await store.stop();
    }
  });

  test('an empty api-keys topic is loaded at once', async ({ kafka, topics, admin }) => {
    const store = new KeyStore({ kafka, names: topics.names, admin, groupId: uniqueName('keys-'), logger: testLogger, onFatal: () => undefined });
    await store.start();
    try {
      await store.loaded;
      expect(store.all()).toEqual([]);
      expect(() => store.readinessCheck().check()).not.toThrow();
    } finally {
      await store.stop();
    }
  });
});

describe('switchyard-keys', () => {
  test('create prints the key once; list shows it without hash or secret; revoke revokes it', async ({ brokers, topics }) => {
    assertBuilt(root, 'dist/cli.js');
    const env = { ...process.env, KAFKA_BROKERS: brokers, TOPIC_PREFIX: topics.prefix };
    const cli = (...args: string[]) => run(process.execPath, [join(root, 'dist', 'cli.js'), ...args], { env });

    const created = await cli('create', '--name', 'ci bot', '--scope', 'commands:send:github.issue.*', '--scope', 'commands:read', '--rate', '5', '--burst', '10', '--json');
    const key = JSON.parse(created.stdout) as { key: string; keyId: string; scopes: string[]; limits: unknown };
    expect(key.key).toMatch(/^sy_[0-9a-f]{16}_[A-Za-z0-9_-]{43}$/);
    expect(key).toMatchObject({ scopes: ['commands:send:github.issue.*', 'commands:read'], limits: { commandsPerSecond: 5, burst: 10 }, createdBy: 'cli' });

    const listed = await cli('list');
    expect(listed.stdout).toContain(key.keyId);
    expect(listed.stdout).toContain('"ci bot"');
    expect(listed.stdout).toContain('active');
    expect(listed.stdout).not.toContain(key.key.slice(20));

    const revoked = await cli('revoke', key.keyId);
    expect(revoked.stdout).toMatch(new RegExp(`^${key.keyId} .* revoked `));
    const after = JSON.parse((await cli('list', '--json')).stdout) as { keyId: string; revoked: boolean }[];
    expect(after.find((entry) => entry.keyId === key.keyId)?.revoked).toBe(true);

    await expect(cli('create', '--name', 'bad', '--scope', 'root')).rejects.toMatchObject({ code: 2, stderr: expect.stringContaining('scopes[0]') });
    await expect(cli('revoke', 'sy_0000000000000000')).rejects.toMatchObject({ code: 2, stderr: expect.stringContaining('no key sy_0000000000000000') });
  });
});
