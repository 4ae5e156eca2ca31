import { join } from 'node:path';
import {
  activeController,
  killLocalKafkaNode,
  localKafkaStatus,
  lockFile,
  repoRoot,
  releaseLocalKafka,
  restartLocalKafkaNode,
  startLocalKafka,
} from '@switchyard/infra';
import { KafkaAdmin, TopicNames, type Kafka } from '@switchyard/kafka';
import { testLogger } from './logger.js';
import { waitFor } from './wait.js';

/** The local 3-node cluster the broker-failure tests kill nodes of; started on first use, stopped after the run. */
export const TEST_CLUSTER = 'test-cluster';

export interface TestCluster {
  readonly brokers: string;
  readonly nodeIds: readonly number[];
  /** SIGKILLs a node, as a crash would. */
  kill(id: number): Promise<void>;
  /** Starts a killed node again; resolves once it is registered with the cluster. */
  restart(id: number): Promise<void>;
  /** The node that is the active controller now. */
  activeController(): number;
  /** A node that is not the active controller (a plain broker, as far as the quorum goes). */
  someBroker(): number;
  /** Resolves once every partition of `topics` has all its replicas in sync again. */
  waitForFullIsr(kafka: Kafka, topics: readonly string[], timeoutMs?: number): Promise<void>;
}

/**
 * Takes the test cluster for one test: starts it if needed (three nodes, free ports), and on release restarts any
 * node the test left down and waits for it to rejoin, so the next test starts with a whole cluster.
 */
export async function acquireTestCluster(): Promise<{ cluster: TestCluster; release: () => Promise<void> }> {
  // Tests that kill nodes must not overlap, or one would kill what another counts on: they take turns.
  const unlock = await lockFile(join(repoRoot(), '.cache/kafka-data', `${TEST_CLUSTER}.lock`), 10 * 60 * 1000, 'the test cluster is held');
  try {
    const kafka = await startLocalKafka({ name: TEST_CLUSTER, nodes: 3, port: 0, startTimeoutMs: 90000, user: 'vitest' });
    const nodeIds = kafka.nodes.map((node) => node.id);
    const cluster: TestCluster = {
      brokers: kafka.brokers,
      nodeIds,
      kill: (id) => killLocalKafkaNode(TEST_CLUSTER, id),
      restart: (id) => restartLocalKafkaNode(TEST_CLUSTER, id),
      activeController: () => activeController(TEST_CLUSTER),
      someBroker() {
        const controller = activeController(TEST_CLUSTER);
        const running = new Set(localKafkaStatus(TEST_CLUSTER).nodes.flatMap((node) => (node.pid === undefined ? [] : [node.id])));
        const broker = nodeIds.find((id) => id !== controller && running.has(id));
        if (broker === undefined) throw new Error('no running node besides the active controller');
        return broker;
      },
      async waitForFullIsr(client, topics, timeoutMs = 60000) {
        const admin = new KafkaAdmin(client, new TopicNames(''), testLogger);
        await admin.connect();
        try {
          await waitFor(async () => (await admin.underReplicated(topics)).length === 0, {
            timeoutMs,
            intervalMs: 250,
            what: `every replica of ${topics.join(', ')} back in sync`,
          });
        } finally {
          await admin.disconnect();
        }
      },
    };
    const release = async () => {
      try {
        for (const node of localKafkaStatus(TEST_CLUSTER).nodes) {
          if (node.pid === undefined) await restartLocalKafkaNode(TEST_CLUSTER, node.id);
        }
      } finally {
        unlock();
      }
    };
    return { cluster, release };
  } catch (error) {
    unlock();
    throw error;
  }
}

/**
 * For the run's teardown: stops the test cluster when a test of this run started it (tests take it with a lease of
 * their worker process) and no live process of another run still holds a lease on it; a cluster started with
 * `kafka-cli start` is left running.
 */
export function testClusterTeardown(): () => Promise<void> {
  return async () => {
    await releaseLocalKafka(TEST_CLUSTER);
  };
}
