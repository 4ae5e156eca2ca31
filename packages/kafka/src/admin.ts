import { topics as catalog, type TopicSpec } from '@switchyard/events';
import type { Admin, Kafka } from 'kafkajs';
import type { KafkaLogger } from './client.js';
import { KafkaError } from './errors.js';
import type { TopicNames } from './topic-names.js';

export interface ProvisionResult {
  created: string[];
  grown: string[];
  unchanged: string[];
}

export interface PartitionOffsets {
  partition: number;
  /** The next offset to be written (high watermark). */
  high: string;
  low: string;
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

  async disconnect(): Promise<void> {
    await this.admin.disconnect();
  }

  /** Answers when the cluster answers a metadata request; throws KFK_UNAVAILABLE otherwise. */
  async ping(timeoutMs = 2000): Promise<void> {
    try {
      await withTimeout(this.admin.describeCluster(), timeoutMs, 'the Kafka cluster');
    } catch (cause) {
      if (cause instanceof KafkaError) throw cause;
      throw new KafkaError('KFK_UNAVAILABLE', `the Kafka cluster is unreachable: ${(cause as Error).message}`, { cause });
    }
  }

  /**
   * Creates the catalog's topics that are missing and grows those with fewer partitions than the catalog says.
   * Safe to run from every service at every start, concurrently: a topic another process just created counts as
   * present. Config drift on existing topics is reported, not overwritten.
   */
  async provision(specs: readonly TopicSpec[] = Object.values(catalog)): Promise<ProvisionResult> {
    const result: ProvisionResult = { created: [], grown: [], unchanged: [] };
    try {
      const existing = new Set(await this.admin.listTopics());
      const missing = specs.filter((spec) => !existing.has(this.names.name(spec)));
      if (missing.length > 0) {
        await this.admin.createTopics({
          waitForLeaders: true,
          topics: missing.map((spec) => ({
            topic: this.names.name(spec),
            numPartitions: spec.partitions,
            replicationFactor: -1,
            configEntries: Object.entries(spec.config).map(([name, value]) => ({ name, value })),
          })),
        });
        result.created.push(...missing.map((spec) => this.names.name(spec)));
      }
      const present = specs.filter((spec) => existing.has(this.names.name(spec)));
      if (present.length > 0) {
        const metadata = await this.admin.fetchTopicMetadata({ topics: present.map((spec) => this.names.name(spec)) });
        for (const spec of present) {
          const name = this.names.name(spec);
          const count = metadata.topics.find((topic) => topic.name === name)?.partitions.length ?? 0;
          if (count < spec.partitions) {
            await this.admin.createPartitions({ topicPartitions: [{ topic: name, count: spec.partitions }] });
            result.grown.push(name);
            this.logger.warn({ topic: name, from: count, to: spec.partitions }, 'grew topic partitions');
          } else {
            result.unchanged.push(name);
          }
        }
      }
    } catch (cause) {
      if (cause instanceof KafkaError) throw cause;
      // Another process may have created the same topics between our list and create.
      if ((cause as { type?: string }).type === 'TOPIC_ALREADY_EXISTS') return this.provision(specs);
      throw new KafkaError('KFK_PROVISION_FAILED', `topic provisioning failed: ${(cause as Error).message}`, { cause });
    }
    return result;
  }

  async partitionOffsets(topic: string): Promise<PartitionOffsets[]> {
    const offsets = await this.admin.fetchTopicOffsets(topic);
    return offsets.map(({ partition, high, low }) => ({ partition, high, low }));
  }

  async deleteTopics(topicNames: readonly string[]): Promise<void> {
    if (topicNames.length > 0) await this.admin.deleteTopics({ topics: [...topicNames] });
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
