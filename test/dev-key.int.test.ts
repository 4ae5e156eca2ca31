import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { topics as catalog } from '@switchyard/events';
import { ensureDevKey, type Stack } from '@switchyard/infra';
import { KafkaAdmin, TopicNames } from '@switchyard/kafka';
import { test, testLogger, uniqueName, waitFor } from '@switchyard/testkit';
import { describe, expect, onTestFinished } from 'vitest';
import { testStack } from './support/stack.js';

/**
 * `npm start`'s development key against real Kafka (ensureDevKey, as the launcher calls it once the topics exist):
 * minted and published on a first run, kept on the next without writing the topic again, replaced once revoked,
 * and replaced on a fresh api-keys topic.
 */

const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');

function keyFile(): string {
  const folder = mkdtempSync(join(tmpdir(), 'sy-dev-key-'));
  onTestFinished(() => rmSync(folder, { recursive: true, force: true }));
  return join(folder, 'cache', 'dev-key.json');
}

describe('the development key on Kafka', () => {
  test('minted once, kept while on the topic, replaced when revoked or when the topic is new', async ({ brokers, kafka, topics, admin, collect, keys }) => {
    const { stack } = await testStack({ brokers, topicPrefix: topics.prefix, databaseUrl: 'postgres://postgres@127.0.0.1:5432/unused' });
    const records = await collect(catalog.apiKeys);
    const path = keyFile();

    // First run: a new admin key, on the topic (its hash, never the key) and in a file only its owner reads.
    const first = await ensureDevKey(stack, path);
    expect(first).toMatchObject({ keyId: first.key.slice(0, 19), minted: 'no saved key', file: path });
    expect(statSync(path).mode & 0o777).toBe(0o600);
    expect(JSON.parse(readFileSync(path, 'utf8'))).toEqual({ key: first.key, keyId: first.keyId, topicPrefix: topics.prefix, brokers });
    const published = await records.waitForEvent((event) => event.data.keyId === first.keyId);
    expect(published.data).toEqual({
      keyId: first.keyId,
      name: 'local development key',
      hash: sha256(first.key),
      scopes: ['admin'],
      createdAt: expect.any(String),
      createdBy: 'local-stack',
    });
    expect(JSON.stringify(published)).not.toContain(first.key);

    // Next run: the same key, and nothing written to the topic (a re-published record could undo a revocation).
    const offsets = async () => (await admin.partitionOffsets(topics.name(catalog.apiKeys))).map(({ partition, high }) => `${partition}:${high}`);
    const before = await offsets();
    const second = await ensureDevKey(stack, path);
    expect(second).toEqual({ key: first.key, keyId: first.keyId, file: path });
    expect(await offsets()).toEqual(before);

    // Revoked (by anyone, e.g. `npm run keys -- revoke`): the next run mints a new key and saves it instead.
    await keys.revoke({ key: first.key, keyId: first.keyId, record: published.data, headers: { authorization: `Bearer ${first.key}` } });
    await records.waitForEvent((event) => event.data.keyId === first.keyId && event.data.revokedAt !== undefined);
    const third = await ensureDevKey(stack, path);
    expect(third.minted).toMatch(new RegExp(`^the saved key ${first.keyId} was revoked at \\S+ by testkit$`));
    expect(third.keyId).not.toBe(first.keyId);
    expect(JSON.parse(readFileSync(path, 'utf8'))).toMatchObject({ key: third.key, keyId: third.keyId });
    await waitFor(() => records.events.some((event) => event.data.keyId === third.keyId), { what: 'the new key on the topic' });
    // The revocation stands: the old record was not written again.
    expect(records.events.filter((event) => event.data.keyId === first.keyId).map((event) => event.data.revokedAt === undefined)).toEqual([true, false]);

    // A fresh api-keys topic (a new Kafka data folder, another TOPIC_PREFIX): the saved key is not there.
    const fresh: Stack = { ...stack, topicPrefix: `${uniqueName('t')}.` };
    const freshAdmin = new KafkaAdmin(kafka, new TopicNames(fresh.topicPrefix), testLogger);
    await freshAdmin.connect();
    onTestFinished(async () => {
      await freshAdmin.deleteTopics([new TopicNames(fresh.topicPrefix).name(catalog.apiKeys)]).catch(() => undefined);
      await freshAdmin.disconnect();
    });
    await freshAdmin.provision([catalog.apiKeys]);
    const fourth = await ensureDevKey(fresh, path);
    expect(fourth.minted).toBe(`the saved key ${third.keyId} is not on the api-keys topic (a new Kafka, or another TOPIC_PREFIX)`);
    expect(JSON.parse(readFileSync(path, 'utf8'))).toEqual({ key: fourth.key, keyId: fourth.keyId, topicPrefix: fresh.topicPrefix, brokers });
  });

  test('a file it cannot read as a key is replaced, not trusted', async ({ brokers, topics }) => {
    const { stack } = await testStack({ brokers, topicPrefix: topics.prefix, databaseUrl: 'postgres://postgres@127.0.0.1:5432/unused' });
    const path = keyFile();
    const first = await ensureDevKey(stack, path);
    rmSync(path);
    writeFileSync(path, '{"key": "sy_', { mode: 0o644 });
    const second = await ensureDevKey(stack, path);
    expect(second.minted).toBe('the saved key file is not valid');
    expect(second.key).not.toBe(first.key);
    expect(statSync(path).mode & 0o777).toBe(0o600);
  });
});
