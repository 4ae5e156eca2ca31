import { commandCatalog, topics } from '@switchyard/events';
import {
  COMPONENT_NAMES,
  defineStack,
  databaseName,
  dropDatabase,
  findComponent,
  generateGithubToken,
  localUrl,
  prepareStack,
  RunningStack,
  withDatabase,
  type ComponentName,
  type Stack,
  type UnexpectedExit,
} from '@switchyard/infra';
import { createKafka, EventConsumer, KafkaAdmin, silentKafkaLogger, TopicNames } from '@switchyard/kafka';
import { freePort, uniqueName, waitFor } from '@switchyard/testkit/node';
import pg from 'pg';
import { Partitioners } from 'kafkajs';
import { WebSocket } from 'ws';
import { defineBenchmark, summarize, type BenchContext, type Comparison, type LatencyGroup, type Metric } from './benchmark.js';

/**
 * The whole stack as `npm start` runs it (infra's stack definition and process runner), on its own topics and
 * database: commands go in over HTTP and are followed to their three destinations. The baseline is the floor
 * under all of it: the same issue create sent straight to the GitHub simulator.
 */

type Arrival = 'result' | 'row' | 'frame';
const ARRIVALS: readonly Arrival[] = ['result', 'row', 'frame'];

/** When each command's result, row and frame were first seen (performance.now()), keyed by command id. */
class Arrivals {
  private readonly seen = new Map<string, Partial<Record<Arrival, number>>>();
  private readonly waiting = new Map<string, () => void>();
  readonly failures: string[] = [];

  record(kind: Arrival, commandId: string): void {
    const entry = this.seen.get(commandId) ?? {};
    entry[kind] ??= performance.now();
    this.seen.set(commandId, entry);
    if (ARRIVALS.every((arrival) => entry[arrival] !== undefined)) this.waiting.get(commandId)?.();
  }

  /** Resolves with the three arrival times once all are in (they may have come before the HTTP answer). */
  async all(commandId: string, timeoutMs = 30000): Promise<Record<Arrival, number>> {
    const complete = () => {
      const entry = this.seen.get(commandId);
      return entry && ARRIVALS.every((arrival) => entry[arrival] !== undefined) ? (entry as Record<Arrival, number>) : undefined;
    };
    const done = complete();
    if (done) return done;
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiting.delete(commandId);
        reject(new Error(`command ${commandId}: not all of ${ARRIVALS.join(', ')} within ${timeoutMs} ms: ${JSON.stringify(this.seen.get(commandId) ?? {})}`));
      }, timeoutMs);
      this.waiting.set(commandId, () => {
        clearTimeout(timer);
        this.waiting.delete(commandId);
        resolve();
      });
    });
    return complete()!;
  }
}

/**
 * Watches the three destinations: a Kafka consumer on command-results, a LISTEN on a trigger over `entities` (the
 * notification is delivered when the sync worker's transaction commits, i.e. when the row becomes visible), and a
 * WebSocket subscription to github.issue.*.
 */
class Observers {
  readonly arrivals: Arrivals;
  private readonly consumer: EventConsumer<typeof topics.commandResults>;
  private readonly listener: pg.Client;
  private readonly socket: WebSocket;

  private constructor(arrivals: Arrivals, consumer: EventConsumer<typeof topics.commandResults>, listener: pg.Client, socket: WebSocket) {
    this.arrivals = arrivals;
    this.consumer = consumer;
    this.listener = listener;
    this.socket = socket;
  }

  static async start(stack: Stack): Promise<Observers> {
    const arrivals = new Arrivals();
    const kafka = createKafka({ brokers: stack.kafkaBrokers.split(','), clientId: uniqueName('bench-'), logger: silentKafkaLogger });
    const consumer = new EventConsumer(kafka, new TopicNames(stack.topicPrefix), {
      groupId: uniqueName('bench-results-'),
      topics: [topics.commandResults],
      fromBeginning: true,
      commitToKafka: false,
      maxWaitTimeMs: 100,
      partitionsConsumedConcurrently: 6,
      logger: silentKafkaLogger,
      onFatal: (error) => arrivals.failures.push(`results consumer: ${error.message}`),
    });
    await consumer.start(async (batch) => {
      for (const record of batch.records) {
        if (!record.decoded.ok) continue;
        const { data } = record.decoded.event;
        if (data.status === 'succeeded') arrivals.record('result', data.commandId);
        else if (data.status !== 'accepted') arrivals.failures.push(`${data.commandId}: ${data.status} ${data.error?.code ?? ''}`);
      }
      batch.markDone();
    });
    await waitFor(() => consumer.isJoined, { timeoutMs: 30000, what: 'the results consumer to join' });

    const listener = new pg.Client({ connectionString: stack.databaseUrl });
    await listener.connect();
    await listener.query(`
      CREATE OR REPLACE FUNCTION bench_entity_committed() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN PERFORM pg_notify('bench_entities', NEW.origin_id); RETURN NULL; END $$;
      CREATE TRIGGER bench_entity_committed AFTER INSERT OR UPDATE ON entities
        FOR EACH ROW WHEN (NEW.origin = 'command') EXECUTE FUNCTION bench_entity_committed();
      LISTEN bench_entities;`);
    listener.on('notification', (message) => message.payload && arrivals.record('row', message.payload));

    const socket = new WebSocket(`${localUrl(findComponent(stack, 'ws-fanout'), 'ws')}/v1/stream?types=github.issue.upserted`);
    socket.on('message', (data: Buffer) => {
      const frame = JSON.parse(data.toString('utf8')) as { op: string; event?: { causationid?: string } };
      if (frame.op === 'event' && frame.event?.causationid) arrivals.record('frame', frame.event.causationid);
    });
    await new Promise<void>((resolve, reject) => {
      socket.once('message', () => resolve());
      socket.once('error', reject);
    });
    return new Observers(arrivals, consumer, listener, socket);
  }

  async stop(): Promise<void> {
    this.socket.terminate();
    await this.listener.end();
    await this.consumer.stop();
  }
}

interface CommandTiming {
  readonly accept: number;
  readonly result: number;
  readonly row: number;
  readonly frame: number;
}

/** Runs `count` tasks with at most `concurrency` in flight (closed loop: each slot starts the next when done). */
async function inFlight<T>(count: number, concurrency: number, task: (index: number) => Promise<T>): Promise<{ results: T[]; seconds: number }> {
  const results: T[] = new Array<T>(count);
  let next = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: Math.min(concurrency, count) }, async () => {
      while (next < count) {
        const index = next;
        next += 1;
        results[index] = await task(index);
      }
    }),
  );
  return { results, seconds: (performance.now() - started) / 1000 };
}

/**
 * `count` repositories whose create commands land evenly on the commands topic's partitions (by the producer's
 * own partitioner and the catalog's own target key), so a concurrent pass measures the adapter's per-partition
 * parallelism rather than luck in the hash.
 */
export function spreadRepositories(count: number): string[] {
  const partitions = topics.commands.partitions;
  const partitioner = Partitioners.DefaultPartitioner();
  const partitionMetadata = Array.from({ length: partitions }, (_, partitionId) => ({ partitionId, partitionErrorCode: 0, leader: 1, replicas: [1], isr: [1], offlineReplicas: [] }));
  const perPartition = new Array<number>(partitions).fill(0);
  const limit = Math.ceil(count / partitions);
  const chosen: string[] = [];
  for (let index = 1; chosen.length < count; index += 1) {
    const repo = `bench-${index}`;
    const key = commandCatalog['github.issue.create'].target({ owner: 'acme', repo, title: 'x' });
    const partition = partitioner({ topic: 'commands', partitionMetadata, message: { key, value: null } });
    if (perPartition[partition]! >= limit) continue;
    perPartition[partition]! += 1;
    chosen.push(`acme/${repo}`);
  }
  return chosen;
}

async function freePorts(): Promise<Record<ComponentName, number>> {
  const ports = {} as Record<ComponentName, number>;
  for (const name of COMPONENT_NAMES) ports[name] = await freePort();
  return ports;
}

export default defineBenchmark({
  name: 'e2e-latency',
  description:
    'A github.issue.create from POST /v1/commands to its result event, its Postgres row and its WebSocket frame, on the whole stack, against the same create sent straight to the GitHub simulator.',
  async run(context: BenchContext) {
    const commands = context.options.number('commands', 300);
    const concurrency = context.options.number('concurrency', 8);
    const warmup = context.options.number('warmup', 20);
    // Commands on one repository share a partition and run in order; one repository per slot, spread over the
    // partitions, lets the concurrent pass run as independent users would.
    const repositories = spreadRepositories(Math.max(1, concurrency));
    const token = generateGithubToken();
    const stack = defineStack({
      kafkaBrokers: context.brokers,
      databaseUrl: withDatabase(context.postgresUrl, uniqueName('sy_bench_')),
      topicPrefix: `${uniqueName('bench')}.`,
      githubToken: token,
      ports: await freePorts(),
      bindHost: '127.0.0.1',
      simulatorHost: '127.0.0.1',
      logLevel: 'info',
      extraEnv: {
        'github-simulator': { GITHUB_SIM_RATE_LIMIT: '1000000', GITHUB_SIM_REPOS: repositories.join(',') },
      },
    });
    const api = `${localUrl(findComponent(stack, 'api-gateway-adapter'))}/v1/commands`;
    const simulator = localUrl(stack.simulator);

    context.log(`starting the stack (topics ${stack.topicPrefix}*, database ${databaseName(stack.databaseUrl)})`);
    await prepareStack(stack);
    const running = RunningStack.start(stack, { parentEnv: process.env });
    let observers: Observers | undefined;
    try {
      const died = running.unexpectedExit.then((death: UnexpectedExit) => {
        throw new Error(`${death.name} exited during the benchmark:\n${death.tail.slice(-20).join('\n')}`);
      });
      died.catch(() => undefined);
      await Promise.race([running.waitReady(60000), died]);
      observers = await Observers.start(stack);
      const { arrivals } = observers;

      const command = async (index: number): Promise<CommandTiming> => {
        const [owner, repo] = repositories[index % repositories.length]!.split('/');
        const t0 = performance.now();
        const response = await fetch(api, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ type: 'github.issue.create', input: { owner, repo, title: `Bench issue ${index}` } }),
        });
        const body = (await response.json()) as { commandId?: string };
        const accepted = performance.now();
        if (response.status !== 202 || !body.commandId) throw new Error(`POST /v1/commands answered ${response.status}: ${JSON.stringify(body)}`);
        const at = await Promise.race([arrivals.all(body.commandId), died]);
        return { accept: accepted - t0, result: at.result - t0, row: at.row - t0, frame: at.frame - t0 };
      };
      const direct = async (index: number): Promise<number> => {
        const repository = repositories[index % repositories.length]!;
        const t0 = performance.now();
        const response = await fetch(`${simulator}/repos/${repository}/issues`, {
          method: 'POST',
          headers: {
            authorization: `Bearer ${token}`,
            accept: 'application/vnd.github+json',
            'x-github-api-version': '2022-11-28',
            'content-type': 'application/json',
          },
          body: JSON.stringify({ title: `Direct issue ${index}` }),
        });
        await response.arrayBuffer();
        if (response.status !== 201) throw new Error(`the simulator answered ${response.status}`);
        return performance.now() - t0;
      };

      context.log(`warm-up: ${warmup} commands and ${warmup} direct creates`);
      await inFlight(warmup, 1, command);
      await inFlight(warmup, 1, direct);

      // Baseline and subject alternate, so both see the same machine state.
      context.log(`sequential: ${commands} direct creates, then ${commands} commands`);
      const directSequential = await inFlight(commands, 1, direct);
      const sequential = await inFlight(commands, 1, command);
      context.log(`${concurrency} in flight: ${commands} direct creates, then ${commands} commands`);
      const directConcurrent = await inFlight(commands, concurrency, direct);
      const concurrent = await inFlight(commands, concurrency, command);
      if (arrivals.failures.length > 0) throw new Error(`commands did not succeed: ${arrivals.failures.slice(0, 5).join('; ')}`);

      const series = (timings: readonly CommandTiming[]) => [
        { name: 'HTTP 202 (accepted by Kafka)', samplesMs: timings.map((timing) => timing.accept) },
        { name: 'command → result event (Kafka)', samplesMs: timings.map((timing) => timing.result) },
        { name: 'command → Postgres row visible', samplesMs: timings.map((timing) => timing.row) },
        { name: 'command → WebSocket frame', samplesMs: timings.map((timing) => timing.frame) },
      ];
      const latencies: LatencyGroup[] = [
        { group: 'sequential, through the stack', series: series(sequential.results) },
        { group: 'sequential, baseline', series: [{ name: 'POST /repos/{owner}/{repo}/issues direct', samplesMs: directSequential.results }] },
        { group: `${concurrency} in flight, through the stack`, series: series(concurrent.results) },
        { group: `${concurrency} in flight, baseline`, series: [{ name: 'POST /repos/{owner}/{repo}/issues direct', samplesMs: directConcurrent.results }] },
      ];

      const p = (samples: readonly number[], at: 'p50' | 'p99') => summarize(samples)[at];
      const rows = (timings: readonly CommandTiming[]) => timings.map((timing) => timing.row);
      const frames = (timings: readonly CommandTiming[]) => timings.map((timing) => timing.frame);
      const results = (timings: readonly CommandTiming[]) => timings.map((timing) => timing.result);
      const versus = (measure: string, subject: string, value: number, baseline: number): Comparison => ({
        measure,
        subject: { name: subject, value },
        baseline: { name: 'simulator direct', value: baseline },
        unit: 'ms',
        better: 'lower',
      });
      const comparisons: Comparison[] = [];
      for (const [label, subject, baseline] of [
        ['sequential', sequential.results, directSequential.results],
        [`${concurrency} in flight`, concurrent.results, directConcurrent.results],
      ] as const) {
        for (const at of ['p50', 'p99'] as const) {
          comparisons.push(
            versus(`${at}, ${label}`, 'command → result event', p(results(subject), at), p(baseline, at)),
            versus(`${at}, ${label}`, 'command → Postgres row', p(rows(subject), at), p(baseline, at)),
            versus(`${at}, ${label}`, 'command → WebSocket frame', p(frames(subject), at), p(baseline, at)),
          );
        }
      }
      const throughput = commands / concurrent.seconds;
      const directThroughput = commands / directConcurrent.seconds;
      comparisons.push({
        measure: `throughput, ${concurrency} in flight`,
        subject: { name: 'commands through to row and frame', value: throughput },
        baseline: { name: 'simulator direct', value: directThroughput },
        unit: 'per s',
        better: 'higher',
      });
      const metrics: Metric[] = [
        { name: 'commands per second, sequential (all three destinations reached)', value: commands / sequential.seconds, unit: 'per s' },
        { name: `commands per second, ${concurrency} in flight`, value: throughput, unit: 'per s' },
        { name: 'direct creates per second, sequential', value: commands / directSequential.seconds, unit: 'per s' },
        { name: `direct creates per second, ${concurrency} in flight`, value: directThroughput, unit: 'per s' },
      ];
      return {
        parameters: {
          commands,
          concurrency,
          warmup,
          repositories: repositories.length,
          'stack LOG_LEVEL': 'info',
          'github simulator latency': '0 ms (loopback, no injected delay)',
        },
        latencies,
        metrics,
        comparisons,
        notes: [
          'Every latency starts just before the HTTP request is sent (performance.now(), one process). "Result event" is when a ' +
            'Kafka consumer in this process receives switchyard.command.succeeded; "Postgres row visible" is when a LISTEN in ' +
            'this process is notified by an AFTER trigger on entities (added to this run’s database only; notifications are ' +
            'delivered at commit); "WebSocket frame" is when a client subscribed to github.issue.upserted receives the frame.',
          `The stack is the one npm start runs (infra/src/stack.ts, the launcher’s process runner), on a fresh topic prefix and ` +
            `database; the simulator’s rate limit is raised so ${2 * (commands + warmup)} creates fit. Commands cycle over ` +
            `${repositories.length} repositories chosen so their commands spread evenly over the ${topics.commands.partitions} ` +
            'partitions of the commands topic, so the concurrent pass is not serialised on one key.',
          'Closed loop: each of the in-flight slots sends its next command only when the previous one reached all three ' +
            'destinations (or, for the baseline, when the simulator answered).',
        ],
      };
    } finally {
      await observers?.stop().catch(() => undefined);
      const exits = await running.stop();
      const unclean = [...exits].filter(([, exit]) => exit.code !== 0);
      if (unclean.length > 0) context.log(`did not stop cleanly: ${unclean.map(([name, exit]) => `${name} ${JSON.stringify(exit)}`).join(', ')}`);
      await cleanUp(stack).catch((error: unknown) => context.log(`cleanup failed: ${(error as Error).message}`));
    }
  },
});

async function cleanUp(stack: Stack): Promise<void> {
  await dropDatabase(stack.databaseUrl);
  const names = new TopicNames(stack.topicPrefix);
  const admin = new KafkaAdmin(createKafka({ brokers: stack.kafkaBrokers.split(','), clientId: 'bench-cleanup', logger: silentKafkaLogger }), names, silentKafkaLogger);
  await admin.connect();
  try {
    await admin.deleteTopics(Object.values(topics).map((spec) => names.name(spec)));
  } finally {
    await admin.disconnect();
  }
}
