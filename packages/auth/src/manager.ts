import { ApiKeyLimits, ApiKeyScope, createEvent, topics, type ApiKeyData } from '@switchyard/events';
import type { EventProducer } from '@switchyard/kafka';
import { firstIssue } from '@switchyard/service-runtime';
import { z } from 'zod';
import { AuthError } from './errors.js';
import { mintKey } from './keys.js';
import { scopeProblem } from './scopes.js';
import type { KeyStore } from './store.js';

/** What creating a key takes (the body of `POST /v1/keys`, the flags of `switchyard-keys create`). */
export const NewKeyRequest = z.strictObject({
  name: z.string().min(1).max(200),
  scopes: z
    .array(ApiKeyScope)
    .min(1)
    .max(100)
    .superRefine((scopes, context) => {
      for (const [index, scope] of scopes.entries()) {
        const problem = scopeProblem(scope);
        if (problem !== undefined) context.addIssue({ code: 'custom', message: problem, path: [index] });
      }
    }),
  limits: ApiKeyLimits.optional(),
});
export type NewKeyRequest = z.infer<typeof NewKeyRequest>;

/** A key as listed: the record without its hash. */
export type KeyView = Omit<ApiKeyData, 'hash'> & { readonly revoked: boolean };

export function keyView(record: ApiKeyData): KeyView {
  const { hash: _hash, ...rest } = record;
  return { ...rest, revoked: record.revokedAt !== undefined };
}

/** A created key: the key itself, shown this once, and its record. */
export interface CreatedKey {
  readonly key: string;
  readonly view: KeyView;
}

export interface KeyManagerDeps {
  readonly producer: Pick<EventProducer, 'send'>;
  /** Read back after each write, so the key works here (and its revocation holds here) once the call returns. */
  readonly store: Pick<KeyStore, 'get' | 'seen'>;
  readonly source: string;
  readonly readBackTimeoutMs?: number;
}

/** Creates and revokes keys by publishing their records to the api-keys topic. */
export class KeyManager {
  private readonly deps: KeyManagerDeps;

  constructor(deps: KeyManagerDeps) {
    this.deps = deps;
  }

  /** Validates a request (AUTH_KEY_INVALID naming the field) and creates the key. */
  async create(body: unknown, createdBy: string): Promise<CreatedKey> {
    const parsed = NewKeyRequest.safeParse(body);
    if (!parsed.success) {
      const { field, message } = firstIssue(parsed.error);
      throw new AuthError('AUTH_KEY_INVALID', `${field || 'body'}: ${message}`, { details: { field: field || 'body' } });
    }
    const minted = mintKey();
    const record: ApiKeyData = {
      keyId: minted.keyId,
      name: parsed.data.name,
      hash: minted.hash,
      scopes: [...new Set(parsed.data.scopes)],
      ...(parsed.data.limits === undefined ? {} : { limits: parsed.data.limits }),
      createdAt: new Date().toISOString(),
      createdBy,
    };
    await this.publish(record);
    return { key: minted.key, view: keyView(record) };
  }

  /** Revokes a key (AUTH_KEY_NOT_FOUND when there is none); revoking a revoked key changes nothing. */
  async revoke(keyId: string, revokedBy: string): Promise<KeyView> {
    const stored = this.deps.store.get(keyId);
    if (stored === undefined) throw new AuthError('AUTH_KEY_NOT_FOUND', `no key ${keyId}`, { details: { field: 'id' } });
    if (stored.record.revokedAt !== undefined) return keyView(stored.record);
    const record: ApiKeyData = { ...stored.record, revokedAt: new Date().toISOString(), revokedBy };
    await this.publish(record);
    return keyView(record);
  }

  /** Writes a record as it is (the local stack's development key). */
  async publish(record: ApiKeyData): Promise<void> {
    const event = createEvent({ type: 'switchyard.api_key.upserted', source: this.deps.source, subject: record.keyId, data: record });
    const [acknowledged] = await this.deps.producer.send(topics.apiKeys, [event]);
    if (acknowledged === undefined) return;
    await this.deps.store.seen(acknowledged.partition, acknowledged.offset, this.deps.readBackTimeoutMs ?? 10000);
  }
}
