import { topics as catalog, type TopicSpec } from '@switchyard/events';
import type { Admin, ConfigResourceTypes, Kafka } from 'kafkajs';
import type { KafkaLogger } from './client.js';
import { KafkaError, type KafkaErrorCode } from './errors.js';
import type { TopicNames } from './topic-names.js';

export interface ProvisionResult {
  created: string[];
  grown: string[];
  unchanged: string[];
  /** Existing topics whose configs differ from the catalog (logged as warnings; never overwritten). */
  drifted: { topic: string; config: string; expected: string; actual: string | null }[];
}

export interface PartitionOffsets {
  partition: number;
  /** The next offset to be written (high watermark). */
  high: string;
  low: string;
}

// The protocol's resource type for topics. kafkajs is CommonJS and Node's ESM loader cannot see its enum as a named
// export, so the value is spelled out.
const TOPIC_RESOURCE = 2 as ConfigResourceTypes;

/**
 * How many copies a topic keeps on a cluster of `brokers`: three where there are three brokers or more, with
 * `min.insync.replicas=2` so an acknowledged write is on two brokers and one broker may die without losing it or
 * refusing writes; on smaller clusters every broker holds a copy and one in sync is enough.
 */
export function replicationFor(brokers: number): { replicationFactor: number; config: Record<string, string> } {
  const replicationFactor = Math.max(1, Math.min(3, brokers));
  return { replicationFactor, config: { 'min.insync.replicas': replicationFactor >= 3 ? '2' : '1' } };
}

/** Thrown inside a retried step to say "not there yet, look again". */
class RetryNow extends Error {}

/** kafkajs connection-level errors that it does not flag retriable, although a reconnect fixes them. */
const CONNECTION_ERRORS = new Set([
  'KafkaJSConnectionError',
  'KafkaJSConnectionClosedError',
  'KafkaJSRequestTimeoutError',
  'KafkaJSBrokerNotFound',
  'KafkaJSMetadataNotLoaded',
  'KafkaJSTopicMetadataNotLoaded',
  'KafkaJSLockTimeout',
]);

function isRetriable(error: unknown): boolean {
  const candidate = error as { name?: string; retriable?: boolean; originalError?: { name?: string; retriable?: boolean } };
  return (
    candidate.retriable === true ||
    candidate.originalError?.retriable === true ||
    CONNECTION_ERRORS.has(candidate.name ?? '') ||
    CONNECTION_ERRORS.has(candidate.originalError?.name ?? '') ||
    // A plain Error kafkajs throws while a broker connection is being re-established.
    (error as Error).message === 'Broker not connected'
  );
}

function isAlreadyExists(error: unknown): boolean {
  const candidate = error as { type?: string; topics?: { error?: { type?: string } }[] };
  return candidate.type === 'TOPIC_ALREADY_EXISTS' || (candidate.topics ?? []).some((topic) => topic.error?.type === 'TOPIC_ALREADY_EXISTS');
}

function withTimeout<R>(promise: Promise<R>, ms: number, what: string): Promise<R> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new KafkaError('KFK_UNAVAILABLE', `${what} did not answer within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** Cluster administration: topic provisioning from the catalog, liveness checks, offsets. */
export class KafkaAdmin {
  private readonly admin: Admin;
  private readonly names: TopicNames;
  private readonly logger: KafkaLogger;

  constructor(kafka: Kafka, names: TopicNames, logger: KafkaLogger) {
    this.admin = kafka.admin();
    this.names = names;
    this.logger = logger;
  }

  async connect(): Promise<void> {
    await this.admin.connect();
  }

  /**
   * The readiness checks every service has: the cluster answers, and (when given) the producer is connected. Shaped
   * as the service runtime's `ReadinessCheck`.
   */
  readinessChecks(producer?: { readonly isConnected: boolean }): { name: string; check: () => Promise<void> | void }[] {
    const checks: { name: string; check: () => Promise<void> | void }[] = [{ name: 'kafka', check: () => this.ping() }];
    if (producer) {
      checks.push({
        name: 'producer',
        check: () => {
          if (!producer.isConnected) throw new Error('producer not connected');
        },
      });
    }
    return checks;
  }

  async disconnect(): Promise<void> {
    await this.admin.disconnect();
  }

  /** The cluster's id: it changes when a cluster is created anew, and with it every log's offsets. */
  async clusterId(): Promise<string> {
    return this.retrying('KFK_UNAVAILABLE', 'describing the cluster', async () => (await this.admin.describeCluster()).clusterId);
  }

  /** Answers when the cluster answers a metadata request; throws KFK_UNAVAILABLE otherwise. */
  async ping(timeoutMs = 2000): Promise<void> {
    await this.describeCluster(timeoutMs);
  }

  /** The cluster's id and how many brokers are registered (fenced brokers are not listed). */
  async describeCluster(timeoutMs = 2000): Promise<{ clusterId: string; brokers: number }> {
    try {
      const described = await withTimeout(this.admin.describeCluster(), timeoutMs, 'the Kafka cluster');
      return { clusterId: described.clusterId, brokers: described.brokers.length };
    } catch (cause) {
      if (cause instanceof KafkaError) throw cause;
      throw new KafkaError('KFK_UNAVAILABLE', `the Kafka cluster is unreachable: ${(cause as Error).message}`, { cause });
    }
  }

  /**
   * Creates the catalog's topics that are missing and grows those with fewer partitions than the catalog says, then
   * waits until every partition has a leader. Safe to run from every service at every start, concurrently: a topic
   * another process just created counts as present. Config drift on existing topics is reported, not overwritten.
   *
   * Retriable broker answers are retried here. On KRaft a new topic shows up in metadata before its partitions
   * are ready and answers UNKNOWN_TOPIC_OR_PARTITION for a moment, which kafkajs's own wait gives up on.
   */
  async provision(specs: readonly TopicSpec[] = Object.values(catalog)): Promise<ProvisionResult> {
    const created = new Set<string>();
    const grown = new Set<string>();
    const wanted = specs.map((spec) => ({ spec, name: this.names.name(spec) }));
    const durability = replicationFor(
      await this.retrying('KFK_PROVISION_FAILED', 'counting the brokers', async () => (await this.admin.describeCluster()).brokers.length),
    );
    await this.retrying('KFK_PROVISION_FAILED', 'topic provisioning', async () => {
      const existing = new Set(await this.admin.listTopics());
      const missing = wanted.filter(({ name }) => !existing.has(name));
      if (missing.length > 0) {
        try {
          await this.admin.createTopics({
            waitForLeaders: false,
            topics: missing.map(({ spec, name }) => ({
              topic: name,
              numPartitions: spec.partitions,
              replicationFactor: durability.replicationFactor,
              configEntries: Object.entries({ ...spec.config, ...durability.config }).map(([configName, value]) => ({ name: configName, value })),
            })),
          });
        } catch (cause) {
          // Another process created some of them between our list and create: list again.
          if (isAlreadyExists(cause)) throw new RetryNow('topics appeared meanwhile');
          throw cause;
        }
        for (const { name } of missing) created.add(name);
      }
      const metadata = await this.admin.fetchTopicMetadata({ topics: wanted.map(({ name }) => name) });
      for (const { spec, name } of wanted) {
        const partitions = metadata.topics.find((topic) => topic.name === name)?.partitions ?? [];
        if (partitions.length < spec.partitions && !created.has(name)) {
          await this.admin.createPartitions({ topicPartitions: [{ topic: name, count: spec.partitions }] });
          grown.add(name);
          this.logger.warn({ topic: name, from: partitions.length, to: spec.partitions }, 'grew topic partitions');
          throw new RetryNow('partitions added');
        }
        if (partitions.length < spec.partitions || partitions.some((partition) => partition.leader < 0)) {
          throw new RetryNow(`${name} has partitions without a leader`);
        }
      }
    });
    const names = wanted.map(({ name }) => name);
    const drifted = await this.configDrift(wanted.filter(({ name }) => !created.has(name)));
    for (const drift of drifted) {
      this.logger.warn(drift, 'topic config differs from the catalog; left as it is');
    }
    return {
      created: names.filter((name) => created.has(name)),
      grown: names.filter((name) => grown.has(name)),
      unchanged: names.filter((name) => !created.has(name) && !grown.has(name)),
      drifted,
    };
  }

  /** Compares existing topics' configs with the catalog's. Changing a cleanup policy in place is an operator's call. */
  private async configDrift(existing: readonly { spec: TopicSpec; name: string }[]): Promise<ProvisionResult['drifted']> {
    if (existing.length === 0) return [];
    const described = await this.retrying('KFK_UNAVAILABLE', 'describing topic configs', () =>
      this.admin.describeConfigs({
        includeSynonyms: false,
        resources: existing.map(({ spec, name }) => ({ type: TOPIC_RESOURCE, name, configNames: Object.keys(spec.config) })),
      }),
    );
    const drifted: ProvisionResult['drifted'] = [];
    for (const { spec, name } of existing) {
      const entries = described.resources.find((resource) => resource.resourceName === name)?.configEntries ?? [];
      for (const [config, expected] of Object.entries(spec.config)) {
        const actual = entries.find((entry) => entry.configName === config)?.configValue ?? null;
        if (actual !== expected) drifted.push({ topic: name, config, expected, actual });
      }
    }
    return drifted;
  }

  /** Partitions of `topics` with a replica out of sync (`topic/partition`); empty when every replica is in the ISR. */
  async underReplicated(topicNames: readonly string[]): Promise<string[]> {
    const metadata = await this.admin.fetchTopicMetadata({ topics: [...topicNames] });
    return metadata.topics.flatMap((topic) =>
      topic.partitions
        .filter((partition) => partition.isr.length < partition.replicas.length || partition.leader < 0)
        .map((partition) => `${topic.name}/${partition.partitionId}`),
    );
  }

  /**
   * Per partition, the first offset whose record is at or after `timestamp` (epoch ms); the high watermark where
   * every record is older.
   */
  async offsetsAt(topic: string, timestamp: number): Promise<{ partition: number; offset: string }[]> {
    return this.retrying('KFK_UNAVAILABLE', `reading the offsets of ${topic} at ${new Date(timestamp).toISOString()}`, async () => {
      const [at, ends] = await Promise.all([this.admin.fetchTopicOffsetsByTimestamp(topic, timestamp), this.admin.fetchTopicOffsets(topic)]);
      return at.map(({ partition, offset }) => ({
        partition,
        offset: BigInt(offset) < 0n ? (ends.find((end) => end.partition === partition)?.high ?? '0') : offset,
      }));
    });
  }

  async partitionOffsets(topic: string): Promise<PartitionOffsets[]> {
    return this.retrying('KFK_UNAVAILABLE', `reading the offsets of ${topic}`, async () => {
      const offsets = await this.admin.fetchTopicOffsets(topic);
      return offsets.map(({ partition, high, low }) => ({ partition, high, low }));
    });
  }

  /** Runs `work` until it succeeds, retrying retriable Kafka errors with capped backoff for up to `timeoutMs`. */
  private async retrying<R>(code: KafkaErrorCode, what: string, work: () => Promise<R>, timeoutMs = 30000): Promise<R> {
    const deadline = Date.now() + timeoutMs;
    for (let attempt = 0; ; attempt += 1) {
      try {
        return await work();
      } catch (cause) {
        if (!(cause instanceof RetryNow || isRetriable(cause)) || Date.now() > deadline) {
          if (cause instanceof KafkaError) throw cause;
          throw new KafkaError(code, `${what} failed: ${(cause as Error).message}`, { cause });
        }
        await new Promise((resolve) => setTimeout(resolve, Math.min(1000, 50 * 2 ** attempt)));
      }
    }
  }

  /**
   * Deletes the topics that exist among `topicNames` and returns once the cluster no longer lists them, so the next
   * listing, create or delete sees them gone. A delete whose answer was lost to the request timeout has still
   * happened, and kafkajs then retries it into UNKNOWN_TOPIC_OR_PARTITION until its retries run out; so each round
   * deletes only what the cluster still lists, and a topic already gone is done.
   */
  async deleteTopics(topicNames: readonly string[]): Promise<void> {
    const wanted = new Set(topicNames);
    const listed = async () => (await this.admin.listTopics()).filter((name) => wanted.has(name));
    let lastError: unknown;
    for (let round = 0; round < 4; round += 1) {
      const remaining = await listed();
      if (remaining.length === 0) return;
      try {
        await this.admin.deleteTopics({ topics: remaining });
        lastError = undefined;
      } catch (cause) {
        lastError = cause;
        this.logger.warn({ topics: remaining, err: cause }, 'deleting topics failed; deleting what is left');
      }
      // Brokers apply a deletion to their metadata shortly after the controller commits it.
      for (const deadline = Date.now() + 5000; Date.now() < deadline; ) {
        if ((await listed()).length === 0) return;
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    }
    const left = await listed();
    if (left.length > 0) throw lastError instanceof Error ? lastError : new Error(`topics still listed after deleting them: ${left.join(', ')}`);
  }

  async listTopics(): Promise<string[]> {
    return this.admin.listTopics();
  }

  async deleteGroups(groupIds: readonly string[]): Promise<void> {
    if (groupIds.length === 0) return;
    try {
      await this.admin.deleteGroups([...groupIds]);
    } catch (cause) {
      // A group that never committed anything may not exist; that is the state we want.
      this.logger.debug({ groupIds, err: cause }, 'deleting consumer groups');
    }
  }
}
