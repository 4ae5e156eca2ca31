import { topics, type ProjectionPositionData, type TopicEvent } from '@switchyard/events';
import { EventConsumer, type ConsumedRecord, type Kafka, type TopicNames } from '@switchyard/kafka';
import { testLogger, uniqueName, waitFor } from '@switchyard/testkit';
import type pg from 'pg';

export type PositionEvent = TopicEvent<typeof topics.projectionPositions>;

export const positionKey = (projection: string, topic: string, partition: number) => `${projection}/${topic}/${partition}`;

interface Waiter {
  readonly key: string;
  readonly offset: bigint;
  readonly cluster: string;
  readonly resolve: (position: ProjectionPositionData) => void;
}

/**
 * Reads the projection-positions topic from the beginning, as a `wait=projected` reader would: the latest position
 * per key (the last one read), and waiters released the moment a position of their cluster passes their offset.
 * `onPosition` sees every position as it is read, before anyone is released.
 */
export class PositionReader {
  readonly records: ConsumedRecord<PositionEvent>[] = [];
  readonly latest = new Map<string, ProjectionPositionData>();
  private readonly waiters = new Set<Waiter>();
  private readonly consumer: EventConsumer<typeof topics.projectionPositions>;
  private readonly onPosition: ((position: ProjectionPositionData, record: ConsumedRecord<PositionEvent>) => Promise<void>) | undefined;

  constructor(kafka: Kafka, names: TopicNames, onPosition?: (position: ProjectionPositionData, record: ConsumedRecord<PositionEvent>) => Promise<void>) {
    this.onPosition = onPosition;
    this.consumer = new EventConsumer(kafka, names, {
      groupId: uniqueName('positions-'),
      topics: [topics.projectionPositions],
      fromBeginning: true,
      commitToKafka: false,
      maxWaitTimeMs: 50,
      logger: testLogger,
      onFatal: (error) => {
        throw error;
      },
    });
  }

  async start(): Promise<this> {
    await this.consumer.start(async (batch) => {
      for (const record of batch.records) {
        if (!record.decoded.ok) throw new Error(`undecodable position: ${record.decoded.error.message}`);
        const { data } = record.decoded.event;
        this.records.push(record);
        if (this.onPosition) await this.onPosition(data, record);
        const key = positionKey(data.projection, data.topic, data.partition);
        this.latest.set(key, data);
        for (const waiter of this.waiters) {
          if (waiter.key === key && waiter.cluster === data.cluster && BigInt(data.nextOffset) > waiter.offset) {
            this.waiters.delete(waiter);
            waiter.resolve(data);
          }
        }
      }
      batch.markDone();
    });
    await waitFor(() => this.consumer.isJoined, { what: 'the position reader to join its group' });
    return this;
  }

  /** The positions read, in order, per key. */
  byKey(): Map<string, PositionEvent[]> {
    const out = new Map<string, PositionEvent[]>();
    for (const record of this.records) {
      if (!record.decoded.ok) continue;
      const { data } = record.decoded.event;
      const key = positionKey(data.projection, data.topic, data.partition);
      out.set(key, [...(out.get(key) ?? []), record.decoded.event]);
    }
    return out;
  }

  /** Resolves once the latest position of `key` in `cluster` is past `offset` (at once if it already is). */
  waitPast(key: string, offset: string, cluster: string): Promise<ProjectionPositionData> {
    const known = this.latest.get(key);
    if (known && known.cluster === cluster && BigInt(known.nextOffset) > BigInt(offset)) return Promise.resolve(known);
    return new Promise((resolve) => this.waiters.add({ key, offset: BigInt(offset), cluster, resolve }));
  }

  /** Resolves once, for every stored position past 0 of `projection`, the latest published one equals it. */
  async waitUntilMatches(pool: pg.Pool, projection: string, timeoutMs = 30000): Promise<void> {
    await waitFor(async () => (await this.mismatches(pool, projection)).length === 0, {
      timeoutMs,
      what: `the published ${projection} positions to equal sync_offsets`,
    });
  }

  /** Stored positions (past 0) whose latest published position differs, and published keys with nothing stored. */
  async mismatches(pool: pg.Pool, projection: string): Promise<string[]> {
    const { rows } = await pool.query<{ topic: string; partition: number; next_offset: string; kafka_cluster: string | null }>(
      'SELECT topic, partition, next_offset, kafka_cluster FROM sync_offsets WHERE projection = $1 AND next_offset > 0',
      [projection],
    );
    const stored = new Map(rows.map((row) => [positionKey(projection, row.topic, row.partition), row]));
    const wrong: string[] = [];
    for (const [key, row] of stored) {
      const published = this.latest.get(key);
      if (published?.nextOffset !== row.next_offset || published.cluster !== row.kafka_cluster) {
        wrong.push(`${key}: stored ${row.next_offset}@${row.kafka_cluster}, published ${published ? `${published.nextOffset}@${published.cluster}` : 'nothing'}`);
      }
    }
    for (const key of this.latest.keys()) {
      if (key.startsWith(`${projection}/`) && !stored.has(key)) wrong.push(`${key}: published, nothing stored`);
    }
    return wrong;
  }

  async stop(): Promise<void> {
    await this.consumer.stop();
  }
}

/** The stored position of one partition (0 when it has none). */
export async function storedPosition(pool: pg.Pool, projection: string, topic: string, partition: number): Promise<bigint> {
  const { rows } = await pool.query<{ next_offset: string }>(
    'SELECT next_offset FROM sync_offsets WHERE projection = $1 AND topic = $2 AND partition = $3',
    [projection, topic, partition],
  );
  return BigInt(rows[0]?.next_offset ?? '0');
}

/** A counter's value from a /metrics text (summed over its series that match `labels`). */
export function metricValue(text: string, name: string, labels = ''): number {
  const pattern = new RegExp(`^${name}(?:\\{([^}]*)\\})? (\\S+)$`, 'gm');
  let sum = 0;
  for (const match of text.matchAll(pattern)) if ((match[1] ?? '').includes(labels)) sum += Number(match[2]);
  return sum;
}

/**
 * A reader that checks every position against Postgres the moment it is read: a published position can only be
 * at or below what `sync_offsets` stores. `ahead` lists those that were not.
 */
export async function readerCheckingAhead(kafka: Kafka, names: TopicNames, pool: pg.Pool): Promise<{ reader: PositionReader; ahead: string[] }> {
  const ahead: string[] = [];
  const reader = await new PositionReader(kafka, names, async (position) => {
    const stored = await storedPosition(pool, position.projection, position.topic, position.partition);
    if (BigInt(position.nextOffset) > stored) ahead.push(`${position.projection}/${position.topic}/${position.partition}: published ${position.nextOffset}, stored ${stored}`);
  }).start();
  return { reader, ahead };
}
