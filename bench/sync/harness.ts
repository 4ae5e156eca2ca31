import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { topics, type Envelope } from '@switchyard/events';
import { ensureDatabase, dropDatabase, repoRoot, withDatabase } from '@switchyard/infra';
import { createKafka, EventProducer, KafkaAdmin, TopicNames, type Kafka } from '@switchyard/kafka';
import { freePort, ServiceProcess, testLogger, uniqueName, waitFor } from '@switchyard/testkit/node';
import pg from 'pg';

const run = promisify(execFile);
const root = repoRoot();
export const SYNC_WORKER = join(root, 'services/sync-worker/dist/main.js');
export const SYNC_CLI = join(root, 'services/sync-worker/dist/cli.js');

/** The sum of a metric's samples on a worker's /metrics (all label sets). */
export async function workerMetric(worker: ServiceProcess, name: string): Promise<number> {
  const text = await fetch(`${worker.url}/metrics`).then((response) => response.text());
  let total = 0;
  for (const line of text.split('\n')) {
    if (line.startsWith(`${name}{`) || line.startsWith(`${name} `)) total += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return total;
}

/** One benchmark's private world: topics under a unique prefix and a fresh, migrated database. */
export class SyncBench {
  readonly names: TopicNames;
  readonly kafka: Kafka;
  readonly admin: KafkaAdmin;
  readonly producer: EventProducer;
  readonly pool: pg.Pool;
  readonly brokers: string;
  readonly databaseUrl: string;

  private constructor(brokers: string, databaseUrl: string, prefix: string) {
    this.brokers = brokers;
    this.databaseUrl = databaseUrl;
    this.names = new TopicNames(prefix);
    this.kafka = createKafka({ brokers: brokers.split(','), clientId: uniqueName('bench-'), logger: testLogger });
    this.admin = new KafkaAdmin(this.kafka, this.names, testLogger);
    // The wire is what is measured: events are valid by construction, so no schema check on the way out.
    this.producer = new EventProducer(this.kafka, this.names, { validate: false });
    this.pool = new pg.Pool({ connectionString: databaseUrl, max: 4 });
  }

  static async create(brokers: string, postgresUrl: string): Promise<SyncBench> {
    const bench = new SyncBench(brokers, withDatabase(postgresUrl, uniqueName('sy_bench_')), `${uniqueName('b')}.`);
    await ensureDatabase(bench.databaseUrl);
    await bench.cli('migrate');
    await bench.admin.connect();
    await bench.admin.provision();
    await bench.producer.connect();
    return bench;
  }

  get prefix(): string {
    return this.names.prefix;
  }

  get env(): Record<string, string> {
    return { KAFKA_BROKERS: this.brokers, TOPIC_PREFIX: this.prefix, DATABASE_URL: this.databaseUrl, LOG_LEVEL: 'warn' };
  }

  async cli(...args: string[]): Promise<string> {
    const { stdout } = await run(process.execPath, [SYNC_CLI, ...args], { env: { PATH: process.env['PATH'] ?? '', ...this.env } });
    return stdout;
  }

  /** Produces in large batches, as fast as the producer goes. */
  async produce(events: readonly Envelope[], batch = 2000): Promise<void> {
    for (let i = 0; i < events.length; i += batch) {
      await this.producer.send(topics.entities, events.slice(i, i + batch) as never);
    }
  }

  async startWorker(extra: Record<string, string> = {}): Promise<ServiceProcess> {
    const port = await freePort();
    return ServiceProcess.start({
      name: 'sync-worker',
      entry: SYNC_WORKER,
      url: `http://127.0.0.1:${port}`,
      env: { ...this.env, PORT: String(port), HOST: '127.0.0.1', ...extra },
      readyTimeoutMs: 60000,
    });
  }

  /** Sum of the stored positions of a projection. */
  async applied(projection = 'entities'): Promise<number> {
    const { rows } = await this.pool.query<{ n: string | null }>('SELECT sum(next_offset) AS n FROM sync_offsets WHERE projection = $1', [projection]);
    return Number(rows[0]?.n ?? 0);
  }

  async topicEnd(): Promise<number> {
    return (await this.admin.partitionOffsets(this.names.name(topics.entities))).reduce((sum, partition) => sum + Number(partition.high), 0);
  }

  /**
   * Waits until the projection has applied everything up to `target` (sum of positions) and measures the rate
   * between the first position that moved and the last: start-up and group join are not counted.
   */
  async measureCatchUp(from: number, target: number, timeoutMs = 600000): Promise<{ events: number; seconds: number; perSecond: number }> {
    let firstAt: number | undefined;
    let firstValue = from;
    await waitFor(
      async () => {
        const now = await this.applied();
        if (firstAt === undefined && now > from) {
          firstAt = performance.now();
          firstValue = now;
        }
        return now >= target;
      },
      { timeoutMs, intervalMs: 20, what: 'the projection to catch up' },
    );
    const seconds = (performance.now() - (firstAt ?? performance.now())) / 1000;
    const events = target - firstValue;
    return { events, seconds, perSecond: seconds > 0 ? events / seconds : 0 };
  }

  async close(): Promise<void> {
    await this.admin.deleteTopics(Object.values(topics).map((spec) => this.names.name(spec))).catch(() => undefined);
    await this.producer.disconnect();
    await this.admin.disconnect();
    await this.pool.end();
    await dropDatabase(this.databaseUrl);
  }
}
