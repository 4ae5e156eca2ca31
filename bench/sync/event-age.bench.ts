import { topics } from '@switchyard/events';
import type { Acknowledged } from '@switchyard/kafka';
import { uniqueName } from '@switchyard/testkit/node';
import { Kafka, logLevel } from 'kafkajs';
import { defineBenchmark, summarize } from '../benchmark.js';
import { SyncBench } from './harness.js';
import { issueEvents } from './workload.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

interface Send {
  readonly sentAt: number;
  readonly acknowledged: readonly Acknowledged[];
}

/**
 * Per-record ages from two timelines: when each send left (with where each of its records landed) and when each
 * offset was seen done (`doneAt(partition, offset)`, undefined if never).
 */
function ages(sends: readonly Send[], doneAt: (partition: number, offset: bigint) => number | undefined): number[] {
  const out: number[] = [];
  for (const send of sends) {
    for (const record of send.acknowledged) {
      const done = doneAt(record.partition, BigInt(record.offset));
      if (done !== undefined) out.push(done - send.sentAt);
    }
  }
  return out;
}

export default defineBenchmark({
  name: 'sync-event-age',
  description:
    'Event age at commit (produce → row committed in Postgres) with the sync worker at half its maximum throughput, against the age at delivery of a bare kafkajs consumer reading the same events at the same time.',
  async run(context) {
    const { brokers, postgresUrl, options } = context;
    const log = (message: string) => context.log(message);
    const seconds = options.number('seconds', 20);
    const bench = await SyncBench.create(brokers, postgresUrl);
    const kafka = new Kafka({ clientId: uniqueName('age-'), brokers: brokers.split(','), logLevel: logLevel.NOTHING });
    const bare = kafka.consumer({ groupId: uniqueName('bench-age-bare-'), maxWaitTimeInMs: 100 });
    const worker = await bench.startWorker();
    try {
      const topic = bench.names.name(topics.entities);
      let maximum = options.number('max', 0);
      if (maximum <= 0) {
        log('measuring the worker’s maximum throughput');
        await bench.produce(issueEvents(60000, 0, 0));
        maximum = (await bench.measureCatchUp(0, 60000)).perSecond;
      }
      const target = Math.round(maximum / 2);
      const start = await bench.topicEnd();

      // The bare consumer reads the same events as they come.
      const received = new Map<string, number>();
      await bare.connect();
      await bare.subscribe({ topics: [topic], fromBeginning: true });
      await bare.run({
        autoCommit: false,
        eachBatch: async ({ batch }) => {
          const now = performance.now();
          for (const message of batch.messages) received.set(`${batch.partition}/${message.offset}`, now);
        },
      });

      // Positions in Postgres, polled: the first moment each partition's position passed an offset.
      const positions: { at: number; next: Map<number, bigint> }[] = [];
      let polling = true;
      const poller = (async () => {
        while (polling) {
          const { rows } = await bench.pool.query<{ partition: number; next_offset: string }>(
            "SELECT partition, next_offset FROM sync_offsets WHERE projection = 'entities' AND topic = $1",
            [topic],
          );
          positions.push({ at: performance.now(), next: new Map(rows.map((row) => [row.partition, BigInt(row.next_offset)])) });
          await sleep(5);
        }
      })();

      log(`producing ${target} events/s for ${seconds} s (half of ${Math.round(maximum)}/s)`);
      const sends: Send[] = [];
      const tick = 20;
      const perTick = Math.max(1, Math.round((target * tick) / 1000));
      const began = performance.now();
      let round = 1;
      for (let due = began; due < began + seconds * 1000; due += tick) {
        const wait = due - performance.now();
        if (wait > 0) await sleep(wait);
        const events = issueEvents(perTick, round, 100000 + (round % 50) * perTick);
        round += 1;
        const sentAt = performance.now();
        sends.push({ sentAt, acknowledged: await bench.producer.send(topics.entities, events as never) });
      }
      const produced = (await bench.topicEnd()) - start;
      await bench.measureCatchUp(start, start + produced, 60000);
      await sleep(200);
      polling = false;
      await poller;

      const committedAge = ages(sends, (partition, offset) => positions.find((sample) => (sample.next.get(partition) ?? 0n) > offset)?.at);
      const deliveredAge = ages(sends, (partition, offset) => received.get(`${partition}/${offset}`));
      const committed = summarize(committedAge);
      const delivered = summarize(deliveredAge);
      return {
        parameters: { 'maximum throughput (events/s)': Math.round(maximum), 'offered load (events/s)': target, seconds, 'events measured': committedAge.length },
        latencies: [
          { group: `at ${target} events/s`, series: [{ name: 'produce → committed in Postgres (sync-worker)', samplesMs: committedAge }] },
          { group: 'baseline, same events', series: [{ name: 'produce → delivered to a bare kafkajs consumer', samplesMs: deliveredAge }] },
        ],
        comparisons: [
          { measure: 'p50 age', subject: { name: 'sync-worker commit', value: committed.p50 }, baseline: { name: 'bare kafkajs delivery', value: delivered.p50 }, unit: 'ms', better: 'lower' },
          { measure: 'p99 age', subject: { name: 'sync-worker commit', value: committed.p99 }, baseline: { name: 'bare kafkajs delivery', value: delivered.p99 }, unit: 'ms', better: 'lower' },
        ],
        notes: [
          'Produce time is when the send left the producer; commit time is the first poll (every 5 ms) of sync_offsets that shows the partition past the record, so commit ages are late by up to one poll. Both consumers read the same records at the same time.',
        ],
      };
    } finally {
      await bare.disconnect().catch(() => undefined);
      await worker.stop();
      await bench.close();
    }
  },
});
