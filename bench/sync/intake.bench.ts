import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { topics } from '@switchyard/events';
import { repoRoot } from '@switchyard/infra';
import { EventConsumer } from '@switchyard/kafka';
import { testLogger, uniqueName } from '@switchyard/testkit/node';
import { Kafka, logLevel } from 'kafkajs';
import { defineBenchmark } from '../benchmark.js';
import { SyncBench } from './harness.js';
import { issueEvents } from './workload.js';

const run = promisify(execFile);

interface Rate {
  records: number;
  seconds: number;
  perSecond: number;
}

/** Counts records until `total` arrived; the clock starts at the first batch (group join not counted). */
function counter(total: number) {
  let count = 0;
  let firstAt: number | undefined;
  let resolve: (rate: Rate) => void = () => undefined;
  const done = new Promise<Rate>((settle) => {
    resolve = settle;
  });
  return {
    done,
    add(records: number) {
      firstAt ??= performance.now();
      count += records;
      if (count >= total) {
        const seconds = (performance.now() - firstAt) / 1000;
        resolve({ records: count, seconds, perSecond: count / seconds });
      }
    },
  };
}

/** The baseline client: kafkajs with nothing on top — no decoding, no validation, no commits. */
async function bareKafkajs(brokers: string, topic: string, total: number, concurrency: number): Promise<Rate> {
  const kafka = new Kafka({ clientId: uniqueName('bare-'), brokers: brokers.split(','), logLevel: logLevel.NOTHING });
  const consumer = kafka.consumer({ groupId: uniqueName('bench-bare-'), maxWaitTimeInMs: 500 });
  const progress = counter(total);
  await consumer.connect();
  await consumer.subscribe({ topics: [topic], fromBeginning: true });
  await consumer.run({
    autoCommit: false,
    partitionsConsumedConcurrently: concurrency,
    eachBatch: async ({ batch }) => progress.add(batch.messages.length),
  });
  const rate = await progress.done;
  await consumer.disconnect();
  return rate;
}

/** The sync worker's intake: its EventConsumer decoding and validating every record, writing nothing. */
async function workerIntake(bench: SyncBench, total: number, concurrency: number): Promise<Rate> {
  const progress = counter(total);
  let invalid = 0;
  const consumer = new EventConsumer(bench.kafka, bench.names, {
    groupId: uniqueName('bench-intake-'),
    topics: [topics.entities],
    fromBeginning: true,
    commitToKafka: false,
    partitionsConsumedConcurrently: concurrency,
    logger: testLogger,
    onFatal: (error) => {
      throw error;
    },
  });
  await consumer.start(async (batch) => {
    for (const record of batch.records) if (!record.decoded.ok) invalid += 1;
    batch.markDone();
    progress.add(batch.records.length);
  });
  const rate = await progress.done;
  await consumer.stop();
  if (invalid > 0) throw new Error(`${invalid} records did not decode`);
  return rate;
}

const TOOLS_VERSION = '4.3.1';

/** Kafka's own Java consumer benchmark (kafka-tools), fetched with bench/kafka-tools/pom.xml on first use. */
async function consumerPerformance(brokers: string, topic: string, total: number, log: (message: string) => void): Promise<Rate> {
  const root = repoRoot();
  const libs = join(root, '.cache/kafka-tools', TOOLS_VERSION, 'libs');
  if (!existsSync(join(libs, '.complete'))) {
    log(`fetching kafka-tools ${TOOLS_VERSION} from Maven Central`);
    await run('mvn', ['-q', '-B', '-f', join(root, 'bench/kafka-tools/pom.xml'), 'dependency:copy-dependencies', '-DincludeScope=runtime', `-DoutputDirectory=${libs}`]);
    await run('touch', [join(libs, '.complete')]);
  }
  const { stdout } = await run(
    'java',
    ['-Xmx512m', '-cp', `${libs}/*`, 'org.apache.kafka.tools.ConsumerPerformance', '--bootstrap-server', brokers, '--topic', topic,
      '--messages', String(total), '--group', uniqueName('bench-java-'), '--timeout', '60000', '--hide-header'],
    { maxBuffer: 1 << 20 },
  );
  // start.time, end.time, data.consumed.in.MB, MB.sec, data.consumed.in.nMsg, nMsg.sec, rebalance.time.ms,
  // fetch.time.ms, fetch.MB.sec, fetch.nMsg.sec — the fetch.* columns leave the group join out, as ours do.
  const line = stdout.trim().split('\n').at(-1) ?? '';
  const fields = line.split(',').map((field) => field.trim());
  const records = Number(fields[4]);
  const fetchMs = Number(fields[7]);
  if (!Number.isFinite(records) || !Number.isFinite(fetchMs) || fetchMs <= 0) throw new Error(`unexpected ConsumerPerformance output: ${line}`);
  return { records, seconds: fetchMs / 1000, perSecond: Number(fields[9]) };
}

export default defineBenchmark({
  name: 'sync-intake',
  description:
    'Records per second into the sync worker (its consumer: fetch, decode, schema validation; no writes) against a bare kafkajs consumer of the same topic, and bare kafkajs against Kafka’s own Java ConsumerPerformance.',
  async run(context) {
    const { brokers, postgresUrl, options } = context;
    const log = (message: string) => context.log(message);
    const total = options.number('records', 200000);
    const concurrency = options.number('concurrency', 3);
    const bench = await SyncBench.create(brokers, postgresUrl);
    try {
      log(`producing ${total} events`);
      await bench.produce(issueEvents(total, 0));
      const topic = bench.names.name(topics.entities);
      log('bare kafkajs');
      const bare = await bareKafkajs(brokers, topic, total, concurrency);
      log('sync worker intake');
      const intake = await workerIntake(bench, total, concurrency);
      log('Kafka ConsumerPerformance');
      const java = await consumerPerformance(brokers, topic, total, log);
      const rate = (value: number) => Math.round(value);
      return {
        parameters: { records: total, partitions: topics.entities.partitions, 'batches handled at once': concurrency, 'kafka-tools': TOOLS_VERSION },
        metrics: [
          { name: 'sync-worker intake', value: rate(intake.perSecond), unit: 'records/s' },
          { name: 'bare kafkajs 2.2.4', value: rate(bare.perSecond), unit: 'records/s' },
          { name: 'Kafka ConsumerPerformance (Java)', value: rate(java.perSecond), unit: 'records/s' },
        ],
        comparisons: [
          {
            measure: 'intake',
            subject: { name: 'sync-worker intake (decode + validate)', value: rate(intake.perSecond) },
            baseline: { name: 'bare kafkajs consumer', value: rate(bare.perSecond) },
            unit: 'records/s',
            better: 'higher',
          },
          {
            measure: 'client',
            subject: { name: 'bare kafkajs consumer', value: rate(bare.perSecond) },
            baseline: { name: 'Kafka ConsumerPerformance (Java)', value: rate(java.perSecond) },
            unit: 'records/s',
            better: 'higher',
          },
        ],
        notes: [
          'All three read the same pre-filled topic from the earliest offset in fresh consumer groups; each clock starts at the first records received, so group joins are not counted.',
          'The intake is what the worker does before it writes: kafkajs fetches, and every record is parsed and validated against the topic catalog (zod). The full worker, writes included, is measured by sync-throughput.',
        ],
      };
    } finally {
      await bench.close();
    }
  },
});
