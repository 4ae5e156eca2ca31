import { mintKey } from '@switchyard/auth';
import { createEvent, topics, type ApiKeyData, type ApiKeyLimits } from '@switchyard/events';
import type { EventProducer } from '@switchyard/kafka';

/** An API key made for a test: the key, its id, and the header that presents it. */
export interface TestKey {
  readonly key: string;
  readonly keyId: string;
  readonly record: ApiKeyData;
  /** `{ authorization: 'Bearer <key>' }`, to spread into fetch headers. */
  readonly headers: { readonly authorization: string };
}

export interface TestKeys {
  /** Publishes a new key to this test's api-keys topic. Services started afterwards know it at once. */
  create(scopes: readonly string[], options?: { name?: string; limits?: ApiKeyLimits }): Promise<TestKey>;
  /** Publishes the key's revocation. */
  revoke(key: TestKey): Promise<void>;
}

export function testKeys(producer: Pick<EventProducer, 'send'>): TestKeys {
  const publish = async (record: ApiKeyData): Promise<void> => {
    await producer.send(topics.apiKeys, [
      createEvent({ type: 'switchyard.api_key.upserted', source: 'switchyard/testkit', subject: record.keyId, data: record }),
    ]);
  };
  return {
    async create(scopes, options = {}) {
      const minted = mintKey();
      const record: ApiKeyData = {
        keyId: minted.keyId,
        name: options.name ?? `test key ${scopes.join(' ')}`,
        hash: minted.hash,
        scopes: [...scopes],
        ...(options.limits === undefined ? {} : { limits: options.limits }),
        createdAt: new Date().toISOString(),
        createdBy: 'testkit',
      };
      await publish(record);
      return { key: minted.key, keyId: minted.keyId, record, headers: { authorization: `Bearer ${minted.key}` } };
    },
    async revoke(key) {
      await publish({ ...key.record, revokedAt: new Date().toISOString(), revokedBy: 'testkit' });
    },
  };
}
