import { topics, type ApiKeyData, type TopicEvent } from '@switchyard/events';
import { EventConsumer, type Kafka, type KafkaAdmin, type KafkaError, type KafkaLogger, type PartitionBatch, type TopicNames } from '@switchyard/kafka';
import type { ReadinessCheck } from '@switchyard/service-runtime';
import { Grants } from './scopes.js';

type KeyEvent = TopicEvent<(typeof topics)['apiKeys']>;

/** A key as a service holds it: its record and its scopes compiled. */
export interface StoredKey {
  readonly record: ApiKeyData;
  readonly grants: Grants;
}

export interface KeyStoreDeps {
  readonly kafka: Kafka;
  readonly names: TopicNames;
  readonly admin: Pick<KafkaAdmin, 'partitionOffsets' | 'deleteGroups'>;
  /** Unique per process: every instance reads the whole topic. */
  readonly groupId: string;
  readonly logger: KafkaLogger;
  readonly onFatal: (error: KafkaError) => void;
}

export type KeyListener = (key: StoredKey, previous: StoredKey | undefined) => void;

function partitionKey(partition: number): string {
  return String(partition);
}

/**
 * Every API key, read from the compacted api-keys topic from offset 0 and kept current: each service instance
 * holds the whole (small) set in memory, and a revocation published by any instance or by the command line
 * reaches it within one fetch (`maxWaitTime` 100 ms). Offsets are never committed; the group exists so the broker
 * assigns this process the topic, and is deleted on stop. A record that would un-revoke a revoked key is ignored:
 * revocation is final.
 */
export class KeyStore {
  private readonly deps: KeyStoreDeps;
  private readonly keys = new Map<string, StoredKey>();
  private readonly listeners: KeyListener[] = [];
  /** Next offset to read, per partition of the api-keys topic. */
  private readonly positions = new Map<string, bigint>();
  private readonly waiters: { partition: number; offset: bigint; resolve: () => void }[] = [];
  private startOffsets = new Map<string, bigint>();
  private loadedFlag = false;
  private loadedResolve: (() => void) | undefined;
  readonly loaded: Promise<void>;
  private consumer: EventConsumer<(typeof topics)['apiKeys']> | undefined;

  constructor(deps: KeyStoreDeps) {
    this.deps = deps;
    this.loaded = new Promise((resolve) => {
      this.loadedResolve = resolve;
    });
  }

  /** True once the topic has been read up to where it was when the store started. */
  get isLoaded(): boolean {
    return this.loadedFlag;
  }

  get(keyId: string): StoredKey | undefined {
    return this.keys.get(keyId);
  }

  all(): StoredKey[] {
    return [...this.keys.values()];
  }

  /** Called for every new or changed key (a revocation included), after the store has it. */
  onChange(listener: KeyListener): void {
    this.listeners.push(listener);
  }

  async start(): Promise<void> {
    const topic = this.deps.names.name(topics.apiKeys);
    const offsets = await this.deps.admin.partitionOffsets(topic);
    // Only partitions with records need reading; an empty one (low = high) is read already.
    this.startOffsets = new Map(offsets.filter(({ high, low }) => BigInt(high) > BigInt(low)).map(({ partition, high }) => [partitionKey(partition), BigInt(high)]));
    const consumer = new EventConsumer(this.deps.kafka, this.deps.names, {
      groupId: this.deps.groupId,
      topics: [topics.apiKeys],
      fromBeginning: true,
      commitToKafka: false,
      maxWaitTimeMs: 100,
      logger: this.deps.logger,
      onFatal: this.deps.onFatal,
    });
    // A rejoin (rebalance, kafkajs restart) starts this group from offset 0 again (nothing is committed): resume
    // where this process is instead.
    consumer.onAssignment((assignment) => {
      for (const { topic: name, partitions } of assignment) {
        for (const partition of partitions) {
          const position = this.positions.get(partitionKey(partition));
          if (position !== undefined) consumer.seek(name, partition, position.toString());
        }
      }
    });
    this.consumer = consumer;
    this.checkLoaded();
    await consumer.start((batch) => this.handle(batch));
  }

  /** Resolves once this store has read the api-keys topic past `offset` of `partition` (false on timeout). */
  async seen(partition: number, offset: string, timeoutMs: number): Promise<boolean> {
    const target = BigInt(offset);
    if ((this.positions.get(partitionKey(partition)) ?? 0n) > target) return true;
    return new Promise<boolean>((resolve) => {
      const waiter = {
        partition,
        offset: target,
        resolve: () => {
          clearTimeout(timer);
          resolve(true);
        },
      };
      // A waiter that times out is removed, so waits that never succeed do not pile up.
      const timer = setTimeout(() => {
        this.waiters.splice(this.waiters.indexOf(waiter), 1);
        resolve(false);
      }, timeoutMs);
      this.waiters.push(waiter);
    });
  }

  /** For /readyz. */
  readinessCheck(): ReadinessCheck {
    return {
      name: 'api keys',
      check: () => {
        if (!this.loadedFlag) throw new Error('the api-keys topic has not been read up to date yet');
      },
    };
  }

  async stop(): Promise<void> {
    await this.consumer?.stop();
    await this.deps.admin.deleteGroups([this.deps.groupId]);
  }

  private async handle(batch: PartitionBatch<KeyEvent>): Promise<void> {
    if (batch.isStale()) return;
    for (const record of batch.records) {
      if (!record.decoded.ok) {
        // The key id is the record's key; nothing else of an undecodable record is repeated.
        this.deps.logger.warn(
          { code: record.decoded.error.code, partition: record.partition, offset: record.offset },
          'skipping an api-keys record that does not decode',
        );
        continue;
      }
      this.apply(record.decoded.event.data);
    }
    batch.markDone();
    this.positions.set(partitionKey(batch.partition), BigInt(batch.nextOffset));
    for (let index = this.waiters.length - 1; index >= 0; index -= 1) {
      const waiter = this.waiters[index]!;
      if (waiter.partition === batch.partition && BigInt(batch.nextOffset) > waiter.offset) {
        this.waiters.splice(index, 1);
        waiter.resolve();
      }
    }
    this.checkLoaded();
  }

  private apply(record: ApiKeyData): void {
    const previous = this.keys.get(record.keyId);
    if (previous?.record.revokedAt !== undefined && record.revokedAt === undefined) return;
    let grants: Grants;
    try {
      grants = new Grants(record.scopes);
    } catch (error) {
      this.deps.logger.warn({ keyId: record.keyId, reason: (error as Error).message }, 'skipping an api key with an invalid scope');
      return;
    }
    const key: StoredKey = { record, grants };
    this.keys.set(record.keyId, key);
    for (const listener of this.listeners) listener(key, previous);
  }

  private checkLoaded(): void {
    if (this.loadedFlag) return;
    for (const [partition, high] of this.startOffsets) {
      if ((this.positions.get(partition) ?? 0n) < high) return;
    }
    this.loadedFlag = true;
    this.deps.logger.info({ keys: this.keys.size }, 'api keys loaded');
    this.loadedResolve?.();
  }
}
