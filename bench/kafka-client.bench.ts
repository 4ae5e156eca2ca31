import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { CLOUDEVENTS_CONTENT_TYPE, CONTENT_TYPE_HEADER, encodeEvent, topics } from '@switchyard/events';
import { repoRoot, startLocalKafka, stopLocalKafka } from '@switchyard/infra';
import { createKafka, EventProducer, KafkaAdmin, TopicNames } from '@switchyard/kafka';
import { testLogger, uniqueName } from '@switchyard/testkit/node';
import type * as KafkaJs from 'kafkajs';
import { defineBenchmark, type Comparison, type Metric } from './benchmark.js';
import { issueEvents } from './sync/workload.js';

const run = promisify(execFile);
type KafkaModule = typeof KafkaJs;

/**
 * kafkajs 2.2.4 exactly as published, without the workspace's patch (patches/kafkajs@2.2.4.patch): `npm pack`
 * fetches it from the registry into .cache/bench on first use. kafkajs has no dependencies, so it loads from there.
 */
async function upstreamKafkajs(log: (message: string) => void): Promise<KafkaModule> {
  const dir = join(repoRoot(), '.cache/bench/kafkajs-2.2.4');
  const entry = join(dir, 'package/index.js');
  if (!existsSync(entry)) {
    log('fetching kafkajs 2.2.4 as published (npm pack)');
    mkdirSync(dir, { recursive: true });
    await run('npm', ['pack', 'kafkajs@2.2.4', '--pack-destination', dir, '--silent']);
    const tarball = readdirSync(dir).find((file) => file.endsWith('.tgz'));
    if (!tarball) throw new Error('npm pack kafkajs@2.2.4 produced no tarball');
    await run('tar', ['-xzf', join(dir, tarball), '-C', dir]);
  }
  return createRequire(import.meta.url)(entry) as KafkaModule;
}

/** The workspace's kafkajs, as packages/kafka uses it (patched). */
function workspaceKafkajs(): KafkaModule {
  return createRequire(import.meta.url)('kafkajs') as KafkaModule;
}

interface Rate {
  records: number;
  seconds: number;
  perSecond: number;
}

type RawMessage = { key: string; value: Buffer; headers: Record<string, string> };

/** Produces `messages` in batches of `batch`, `lanes` batches at a time, acks from all in-sync replicas. */
async function produceRate(send: (messages: RawMessage[]) => Promise<unknown>, messages: RawMessage[], batch: number, lanes: number): Promise<Rate> {
  let next = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: lanes }, async () => {
      while (next < messages.length) {
        const from = next;
        next += batch;
        await send(messages.slice(from, from + batch));
      }
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  return { records: messages.length, seconds, perSecond: messages.length / seconds };
}

/** A bare consumer (eachBatch, nothing decoded) reading `total` records; the clock starts at the first batch. */
async function consumeRate(kafkajs: KafkaModule, brokers: string, topic: string, total: number): Promise<Rate> {
  const kafka = new kafkajs.Kafka({ clientId: uniqueName('bench-'), brokers: brokers.split(','), logLevel: kafkajs.logLevel.NOTHING });
  const consumer = kafka.consumer({ groupId: uniqueName('bench-client-'), maxWaitTimeInMs: 500 });
  let count = 0;
  let firstAt = 0;
  let finish: (rate: Rate) => void = () => undefined;
  const done = new Promise<Rate>((resolve) => (finish = resolve));
  await consumer.connect();
  await consumer.subscribe({ topics: [topic], fromBeginning: true });
  await consumer.run({
    autoCommit: false,
    partitionsConsumedConcurrently: 3,
    eachBatch: async ({ batch }) => {
      if (firstAt === 0) firstAt = performance.now();
      count += batch.messages.length;
      if (count >= total) {
        const seconds = (performance.now() - firstAt) / 1000;
        finish({ records: count, seconds, perSecond: count / seconds });
      }
    },
  });
  const rate = await done;
  await consumer.disconnect();
  return rate;
}

function rawProducer(kafkajs: KafkaModule, brokers: string, topic: string) {
  const kafka = new kafkajs.Kafka({ clientId: uniqueName('bench-'), brokers: brokers.split(','), logLevel: kafkajs.logLevel.NOTHING });
  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 5, allowAutoTopicCreation: false, createPartitioner: kafkajs.Partitioners.DefaultPartitioner });
  return {
    connect: () => producer.connect(),
    disconnect: () => producer.disconnect(),
    send: (messages: RawMessage[]) => producer.send({ topic, acks: -1, messages }),
  };
}

interface ClusterRun {
  readonly label: string;
  readonly metrics: Metric[];
  readonly comparisons: Comparison[];
}

/**
 * One cluster: each client produces the same records to a topic of its own (the entities topic's 6 partitions,
 * replicated as provisioning does on that cluster), alternating subject and baseline `rounds` times and keeping
 * each one's best; then each consumes the other's topic, again alternating.
 */
async function measureCluster(
  label: string,
  brokers: string,
  clients: { subject: KafkaModule; baseline: KafkaModule },
  options: { records: number; batch: number; lanes: number; rounds: number },
  log: (message: string) => void,
): Promise<ClusterRun> {
  const names = new TopicNames(`${uniqueName('kc')}.`);
  const kafka = createKafka({ brokers: brokers.split(','), clientId: uniqueName('bench-'), logger: testLogger });
  const admin = new KafkaAdmin(kafka, names, testLogger);
  await admin.connect();
  const messages = issueEvents(options.records, 0).map((event) => ({
    key: topics.entities.keyOf(event as never),
    value: encodeEvent(event),
    headers: { [CONTENT_TYPE_HEADER]: CLOUDEVENTS_CONTENT_TYPE },
  }));
  const topicsMade: string[] = [];
  const warmer = new EventProducer(kafka, new TopicNames(''), { validate: false });
  await warmer.connect();
  // A new topic's partitions may refuse writes for a moment after they have leaders; one record each before the
  // clock starts keeps that out of the measurement (and out of the baseline's way: see the notes).
  const freshTopic = async () => {
    const round = new TopicNames(`${uniqueName('kc')}.`);
    await new KafkaAdmin(kafka, round, testLogger).provision([topics.entities]);
    const name = round.name(topics.entities);
    topicsMade.push(name);
    const partitions = (await admin.partitionOffsets(name)).length;
    for (let partition = 0; partition < partitions; partition += 1) {
      await warmer.sendRaw([{ topic: name, messages: [{ key: 'warm-up', value: Buffer.from('{}'), headers: {}, partition }] }]);
    }
    return name;
  };
  try {
    const best = { subject: 0, eventProducer: 0, baseline: 0, consumeSubject: 0, consumeBaseline: 0 };
    const filled: string[] = [];
    for (let round = 0; round < options.rounds; round += 1) {
      // Which goes first alternates, so neither always meets the cluster as the other left it.
      for (const which of round % 2 === 0 ? (['subject', 'baseline'] as const) : (['baseline', 'subject'] as const)) {
        const topic = await freshTopic();
        const producer = rawProducer(clients[which], brokers, topic);
        await producer.connect();
        const rate = await produceRate((batch) => producer.send(batch), messages, options.batch, options.lanes);
        await producer.disconnect();
        best[which] = Math.max(best[which], rate.perSecond);
        log(`${label}: produce ${which} ${Math.round(rate.perSecond)} records/s`);
        filled.push(topic);
      }
      const topic = await freshTopic();
      const eventProducer = new EventProducer(kafka, new TopicNames(''), { validate: false });
      await eventProducer.connect();
      const rate = await produceRate(
        (batch) => eventProducer.sendRaw([{ topic, messages: batch }]),
        messages,
        options.batch,
        options.lanes,
      );
      await eventProducer.disconnect();
      best.eventProducer = Math.max(best.eventProducer, rate.perSecond);
      log(`${label}: produce EventProducer ${Math.round(rate.perSecond)} records/s`);
    }
    for (let round = 0; round < options.rounds; round += 1) {
      const topic = filled[round % filled.length]!;
      // Alternating which goes first, so neither always reads a log the other has just warmed.
      const first = round % 2 === 0 ? 'subject' : 'baseline';
      const rates = { subject: 0, baseline: 0 };
      for (const which of first === 'subject' ? (['subject', 'baseline'] as const) : (['baseline', 'subject'] as const)) {
        rates[which] = (await consumeRate(clients[which], brokers, topic, options.records)).perSecond;
      }
      const subject = { perSecond: rates.subject };
      const baseline = { perSecond: rates.baseline };
      best.consumeSubject = Math.max(best.consumeSubject, subject.perSecond);
      best.consumeBaseline = Math.max(best.consumeBaseline, baseline.perSecond);
      log(`${label}: consume subject ${Math.round(subject.perSecond)}, baseline ${Math.round(baseline.perSecond)} records/s`);
    }
    const rate = (value: number) => Math.round(value);
    return {
      label,
      metrics: [
        { name: `${label}: produce, workspace kafkajs (patched)`, value: rate(best.subject), unit: 'records/s' },
        { name: `${label}: produce, EventProducer.sendRaw`, value: rate(best.eventProducer), unit: 'records/s' },
        { name: `${label}: produce, kafkajs 2.2.4 as published`, value: rate(best.baseline), unit: 'records/s' },
        { name: `${label}: consume, workspace kafkajs (patched)`, value: rate(best.consumeSubject), unit: 'records/s' },
        { name: `${label}: consume, kafkajs 2.2.4 as published`, value: rate(best.consumeBaseline), unit: 'records/s' },
      ],
      comparisons: [
        {
          measure: `produce, ${label}`,
          subject: { name: 'workspace kafkajs (patched)', value: rate(best.subject) },
          baseline: { name: 'kafkajs 2.2.4 as published', value: rate(best.baseline) },
          unit: 'records/s',
          better: 'higher',
        },
        {
          measure: `produce through EventProducer, ${label}`,
          subject: { name: 'EventProducer.sendRaw', value: rate(best.eventProducer) },
          baseline: { name: 'kafkajs 2.2.4 as published', value: rate(best.baseline) },
          unit: 'records/s',
          better: 'higher',
        },
        {
          measure: `consume, ${label}`,
          subject: { name: 'workspace kafkajs (patched)', value: rate(best.consumeSubject) },
          baseline: { name: 'kafkajs 2.2.4 as published', value: rate(best.consumeBaseline) },
          unit: 'records/s',
          better: 'higher',
        },
      ],
    };
  } finally {
    await warmer.disconnect();
    await admin.deleteTopics(topicsMade).catch(() => undefined);
    await admin.disconnect();
  }
}

const BENCH_CLUSTER = 'bench-cluster';

export default defineBenchmark({
  name: 'kafka-client',
  description:
    'Produce and consume records/s of the Kafka client packages/kafka uses (kafkajs 2.2.4 with the workspace patch) against kafkajs 2.2.4 as published, on one broker and on a local 3-node cluster.',
  async run(context) {
    const { options } = context;
    const log = (message: string) => context.log(message);
    const settings = {
      records: options.number('records', 100000),
      batch: options.number('batch', 100),
      lanes: options.number('lanes', 4),
      rounds: options.number('rounds', 3),
    };
    const clients = { subject: workspaceKafkajs(), baseline: await upstreamKafkajs(log) };
    const runs: ClusterRun[] = [await measureCluster('1 broker', context.brokers, clients, settings, log)];
    log('starting a local 3-node cluster');
    const cluster = await startLocalKafka({ name: BENCH_CLUSTER, nodes: 3, port: 0 });
    try {
      runs.push(await measureCluster('3 brokers', cluster.brokers, clients, settings, log));
    } finally {
      if (cluster.started) await stopLocalKafka(BENCH_CLUSTER);
    }
    return {
      parameters: {
        records: settings.records,
        'batch size': settings.batch,
        'batches in flight': settings.lanes,
        'rounds (best kept; the order alternates)': settings.rounds,
        partitions: topics.entities.partitions,
        'record size': `~${Math.round(issueEvents(1, 0).map((event) => encodeEvent(event).length)[0]! / 100) / 10} KB`,
      },
      metrics: runs.flatMap((entry) => entry.metrics),
      comparisons: runs.flatMap((entry) => entry.comparisons),
      notes: [
        'Both clients produce with the idempotent producer, acks -1, up to 5 requests in flight and the same batches to fresh 6-partition topics (three replicas and min.insync.replicas 2 on the 3-node cluster); each consumes with eachBatch, three partitions at once, nothing decoded. Subject and baseline alternate within each round; the best of the rounds is kept for each.',
        'Each topic gets one record per partition before its clock starts: a partition of a topic just created may refuse a first write, and kafkajs as published, with four sends in flight on one idempotent producer, then reuses sequence numbers and fails with OUT_OF_ORDER_SEQUENCE_NUMBER (docs/adr/0003-kafka-client.md). EventProducer sends one request at a time, coalescing concurrent sends, so it is not exposed to that.',
        'The baseline is fetched with `npm pack kafkajs@2.2.4` into .cache/bench, so it is the published code without patches/kafkajs@2.2.4.patch. The patch changes only how a send keeps track of answers (per partition, not per broker); the consumer code is the same in both.',
      ],
    };
  },
});
