import { createHash, randomBytes } from 'node:crypto';
import type { ApiKeyData } from '@switchyard/events';
import { decideDevKey, devKeyPath, parseDevKeyFile } from '@switchyard/infra';
import { describe, expect, it } from 'vitest';

/**
 * What `npm start` does with the development key it saved in .cache/dev-key.json: keep it while the api-keys topic
 * has it unrevoked, mint a new one otherwise (a first run, a new Kafka data folder, another TOPIC_PREFIX, a revoked
 * key, a damaged file). Decided without Kafka from the file's text and a lookup of the topic's records.
 */

function newKey(): { key: string; keyId: string; hash: string } {
  const keyId = `sy_${randomBytes(8).toString('hex')}`;
  const key = `${keyId}_${randomBytes(32).toString('base64url')}`;
  return { key, keyId, hash: createHash('sha256').update(key).digest('hex') };
}

function record(key: { keyId: string; hash: string }, extra: Partial<ApiKeyData> = {}): ApiKeyData {
  return {
    keyId: key.keyId,
    name: 'local development key',
    hash: key.hash,
    scopes: ['admin'],
    createdAt: '2026-11-24T05:00:00.000Z',
    createdBy: 'local-stack',
    ...extra,
  };
}

function fileText(key: { key: string; keyId: string }, extra: Record<string, unknown> = {}): string {
  return JSON.stringify({ key: key.key, keyId: key.keyId, topicPrefix: 'switchyard.', brokers: '127.0.0.1:9092', ...extra });
}

/** A topic holding exactly these records. */
const topicWith = (...records: ApiKeyData[]) => (keyId: string) => records.find((candidate) => candidate.keyId === keyId);

describe('the development key decision', () => {
  const saved = newKey();

  it('mints a key when none is saved', () => {
    expect(decideDevKey(undefined, topicWith(record(saved)))).toEqual({ action: 'mint', reason: 'no saved key' });
  });

  it('keeps the saved key while the topic has it unrevoked', () => {
    expect(decideDevKey(fileText(saved), topicWith(record(newKey()), record(saved)))).toEqual({
      action: 'reuse',
      saved: { key: saved.key, keyId: saved.keyId, topicPrefix: 'switchyard.', brokers: '127.0.0.1:9092' },
    });
  });

  it('mints a new key when the saved one was revoked, saying when and by whom', () => {
    const revoked = record(saved, { revokedAt: '2026-11-24T06:00:00.000Z', revokedBy: 'sy_00000000000000aa' });
    expect(decideDevKey(fileText(saved), topicWith(revoked))).toEqual({
      action: 'mint',
      reason: `the saved key ${saved.keyId} was revoked at 2026-11-24T06:00:00.000Z by sy_00000000000000aa`,
    });
    const byNobody = record(saved, { revokedAt: '2026-11-24T06:00:00.000Z' });
    expect(decideDevKey(fileText(saved), topicWith(byNobody))).toEqual({
      action: 'mint',
      reason: `the saved key ${saved.keyId} was revoked at 2026-11-24T06:00:00.000Z`,
    });
  });

  it('mints a new key when the topic does not have the saved one (a new Kafka, another TOPIC_PREFIX)', () => {
    for (const lookup of [topicWith(), topicWith(record(newKey()))]) {
      expect(decideDevKey(fileText(saved), lookup)).toEqual({
        action: 'mint',
        reason: `the saved key ${saved.keyId} is not on the api-keys topic (a new Kafka, or another TOPIC_PREFIX)`,
      });
    }
  });

  it('mints a new key when the saved key does not hash to the record of its id', () => {
    const other = newKey();
    expect(decideDevKey(fileText(saved), topicWith(record({ keyId: saved.keyId, hash: other.hash })))).toEqual({
      action: 'mint',
      reason: `the saved key does not match the record of ${saved.keyId}`,
    });
  });

  it('mints a new key when the file is damaged, and never looks it up', () => {
    const damaged = [
      '',
      '{"key": ',
      'null',
      '[]',
      JSON.stringify({ keyId: saved.keyId, topicPrefix: 'switchyard.', brokers: '127.0.0.1:9092' }),
      fileText(saved, { keyId: newKey().keyId }),
      fileText({ key: `${saved.key}x`, keyId: saved.keyId }),
      fileText(saved, { topicPrefix: 7 }),
      fileText(saved, { brokers: undefined }),
    ];
    for (const text of damaged) {
      const asked: string[] = [];
      expect(
        decideDevKey(text, (keyId) => {
          asked.push(keyId);
          return record(saved);
        }),
        text,
      ).toEqual({ action: 'mint', reason: 'the saved key file is not valid' });
      expect(asked).toEqual([]);
      expect(parseDevKeyFile(text)).toBeUndefined();
    }
  });

  it('keeps the file in .cache/dev-key.json under the checkout unless SWITCHYARD_DEV_KEY_FILE says otherwise', () => {
    expect(devKeyPath({}, '/repo')).toBe('/repo/.cache/dev-key.json');
    expect(devKeyPath({ SWITCHYARD_DEV_KEY_FILE: '' }, '/repo')).toBe('/repo/.cache/dev-key.json');
    expect(devKeyPath({ SWITCHYARD_DEV_KEY_FILE: '/tmp/k.json' }, '/repo')).toBe('/tmp/k.json');
    expect(devKeyPath({ SWITCHYARD_DEV_KEY_FILE: 'keys/dev.json' }, '/repo', '/home/me')).toBe('/home/me/keys/dev.json');
  });
});
