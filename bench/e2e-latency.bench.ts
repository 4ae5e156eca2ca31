import { topics } from '@switchyard/events';
import {
  COMPONENT_NAMES,
  createStackKey,
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
import { WebSocket } from 'ws';
import { defineBenchmark, summarize, type BenchContext, type Comparison, type LatencyGroup, type Metric } from './benchmark.js';

/**
 * The whole stack as `npm start` runs it (infra's stack definition and process runner), on its own topics and
 * database: commands go in over HTTP and are followed to their three destinations. The baseline is the floor
 * under all of it: the same issue create sent straight to the GitHub simulator. Requests present an API key made
 * for the run, as every client's do.
 */

type Arrival = 'result' | 'row' | 'frame';
const ARRIVALS: readonly Arrival[] = ['result', 'row', 'frame'];

/** When each command's result, row and frame were first seen (performance.now()), keyed by command id. */
class Arrivals {
  private readonly seen = new Map<string, Partial<Record<Arrival, number>>>();
  private readonly waiting = new Map<string, () => void>();
  private readonly listeners = new Map<string, (() => void)[]>();
  readonly failures: string[] = [];

  record(kind: Arrival, commandId: string): void {
    const entry = this.seen.get(commandId) ?? {};
    entry[kind] ??= performance.now();
    this.seen.set(commandId, entry);
    for (const wake of this.listeners.get(commandId) ?? []) wake();
    this.listeners.delete(commandId);
    if (ARRIVALS.every((arrival) => entry[arrival] !== undefined)) this.waiting.get(commandId)?.();
  }

  /** Resolves with when one kind arrived for the command (it may have come before the HTTP answer). */
  async first(commandId: string, kind: Arrival, timeoutMs = 30000): Promise<number> {
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      const at = this.seen.get(commandId)?.[kind];
      if (at !== undefined) return at;
      if (performance.now() > deadline) throw new Error(`command ${commandId}: no ${kind} within ${timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        const list = this.listeners.get(commandId) ?? [];
        list.push(resolve);
        this.listeners.set(commandId, list);
        setTimeout(resolve, 50);
      });
    }
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

  static async start(stack: Stack, key: string): Promise<Observers> {
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

    const socket = new WebSocket(`${localUrl(findComponent(stack, 'ws-fanout'), 'ws')}/v1/stream?types=github.issue.upserted`, {
      headers: { authorization: `Bearer ${key}` },
    });
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

/** Starts `count` tasks at a fixed rate (open loop: the next starts on time whether or not earlier ones finished). */
async function atRate<T>(count: number, perSecond: number, task: (index: number) => Promise<T>): Promise<T[]> {
  const started = performance.now();
  const pending: Promise<T>[] = [];
  for (let index = 0; index < count; index += 1) {
    const due = started + (index * 1000) / perSecond;
    const wait = due - performance.now();
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
    pending.push(task(index));
  }
  return Promise.all(pending);
}

async function freePorts(): Promise<Record<ComponentName, number>> {
  const ports = {} as Record<ComponentName, number>;
  for (const name of COMPONENT_NAMES) ports[name] = await freePort();
  return ports;
}

const REPOSITORY = 'acme/widgets';

export default defineBenchmark({
  name: 'e2e-latency',
  description:
    'A github.issue.create from POST /v1/commands to its result event, its Postgres row and its WebSocket frame, on the whole stack, sequentially, at 8 and at 64 in flight, at half the maximum rate, and with ?wait=projected, against the same create sent straight to the GitHub simulator.',
  async run(context: BenchContext) {
    const commands = context.options.number('commands', 300);
    const levels = [1, context.options.number('concurrency', 8), context.options.number('high', 64)];
    const warmup = context.options.number('warmup', 30);
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
      extraEnv: { 'github-simulator': { GITHUB_SIM_RATE_LIMIT: '10000000' } },
    });
    const api = `${localUrl(findComponent(stack, 'api-gateway-adapter'))}/v1/commands`;
    const simulator = localUrl(stack.simulator);

    context.log(`starting the stack (topics ${stack.topicPrefix}*, database ${databaseName(stack.databaseUrl)})`);
    await prepareStack(stack);
    // Published before the services start, so each knows it once ready; the budget is one the run does not reach.
    const { key } = await createStackKey(
      stack,
      { name: 'e2e-latency benchmark', scopes: ['commands:send:github.issue.*', 'stream:github.issue.*'], limits: { commandsPerSecond: 1_000_000, burst: 1_000_000 } },
      'bench',
    );
    const authorization = `Bearer ${key}`;
    const running = RunningStack.start(stack, { parentEnv: process.env });
    let observers: Observers | undefined;
    try {
      const died = running.unexpectedExit.then((death: UnexpectedExit) => {
        throw new Error(`${death.name} exited during the benchmark:\n${death.tail.slice(-20).join('\n')}`);
      });
      died.catch(() => undefined);
      await Promise.race([running.waitReady(60000), died]);
      observers = await Observers.start(stack, key);
      const { arrivals } = observers;
      const [owner, repo] = REPOSITORY.split('/');

      /** Sends a create and resolves when its result event arrived; the row and frame are collected afterwards. */
      const send = async (index: number): Promise<{ commandId: string; t0: number; accept: number; result: number }> => {
        const t0 = performance.now();
        const response = await fetch(api, {
          method: 'POST',
          headers: { 'content-type': 'application/json', authorization },
          body: JSON.stringify({ type: 'github.issue.create', input: { owner, repo, title: `Bench issue ${index}` } }),
        });
        const body = (await response.json()) as { commandId?: string };
        const accept = performance.now() - t0;
        if (response.status !== 202 || !body.commandId) throw new Error(`POST /v1/commands answered ${response.status}: ${JSON.stringify(body)}`);
        const at = await Promise.race([arrivals.first(body.commandId, 'result'), died]);
        return { commandId: body.commandId, t0, accept, result: at - t0 };
      };
      const complete = async (sent: readonly { commandId: string; t0: number; accept: number; result: number }[]): Promise<CommandTiming[]> =>
        Promise.all(
          sent.map(async (entry) => {
            const at = await Promise.race([arrivals.all(entry.commandId), died]);
            return { accept: entry.accept, result: entry.result, row: at.row - entry.t0, frame: at.frame - entry.t0 };
          }),
        );
      const direct = async (index: number): Promise<number> => {
        const t0 = performance.now();
        const response = await fetch(`${simulator}/repos/${REPOSITORY}/issues`, {
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
      /** POST ?wait=projected: the answer comes once the issue is committed to Postgres. */
      const projected = async (index: number): Promise<number> => {
        const t0 = performance.now();
        const response = await fetch(`${api}?wait=projected&timeout=30s`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', authorization },
          body: JSON.stringify({ type: 'github.issue.create', input: { owner, repo, title: `Projected issue ${index}` } }),
        });
        const body = (await response.json()) as { projected?: boolean };
        if (response.status !== 200 || body.projected !== true) throw new Error(`wait=projected answered ${response.status}: ${JSON.stringify(body)}`);
        return performance.now() - t0;
      };

      context.log(`warm-up: ${warmup} commands and ${warmup} direct creates`);
      await complete((await inFlight(warmup, 4, send)).results);
      await inFlight(warmup, 4, direct);

      // Baseline and subject alternate at each level, so both see the same machine state.
      const passes: { level: number; timings: CommandTiming[]; seconds: number; direct: number[]; directSeconds: number }[] = [];
      for (const level of levels) {
        context.log(`${level} in flight: ${commands} direct creates, then ${commands} commands`);
        const baseline = await inFlight(commands, level, direct);
        const subject = await inFlight(commands, level, send);
        passes.push({ level, timings: await complete(subject.results), seconds: subject.seconds, direct: baseline.results, directSeconds: baseline.seconds });
      }
      const maximum = Math.max(...passes.map((pass) => commands / pass.seconds));
      const half = Math.max(1, Math.round(maximum / 2));
      context.log(`open loop at ${half} commands/s (half of the ${Math.round(maximum)}/s reached)`);
      const halfRate = await complete(await atRate(commands, half, send));
      context.log(`wait=projected: ${commands} commands one after another, then 8 at a time`);
      const waitedSequential = (await inFlight(commands, 1, projected)).results;
      const waitedConcurrent = (await inFlight(commands, levels[1]!, projected)).results;
      if (arrivals.failures.length > 0) throw new Error(`commands did not succeed: ${arrivals.failures.slice(0, 5).join('; ')}`);

      const series = (timings: readonly CommandTiming[]) => [
        { name: 'HTTP 202 (accepted by Kafka)', samplesMs: timings.map((timing) => timing.accept) },
        { name: 'command → result event (Kafka)', samplesMs: timings.map((timing) => timing.result) },
        { name: 'command → Postgres row visible', samplesMs: timings.map((timing) => timing.row) },
        { name: 'command → WebSocket frame', samplesMs: timings.map((timing) => timing.frame) },
      ];
      const label = (level: number) => (level === 1 ? 'sequential' : `${level} in flight`);
      const latencies: LatencyGroup[] = passes.flatMap((pass) => [
        { group: `${label(pass.level)}, through the stack`, series: series(pass.timings) },
        { group: `${label(pass.level)}, baseline`, series: [{ name: 'POST /repos/{owner}/{repo}/issues direct', samplesMs: pass.direct }] },
      ]);
      latencies.push(
        { group: `open loop at ${half}/s (half the maximum)`, series: series(halfRate) },
        { group: 'wait=projected', series: [{ name: 'sequential: POST until its answer (row committed)', samplesMs: waitedSequential }, { name: `${levels[1]} in flight`, samplesMs: waitedConcurrent }] },
      );

      const p = (samples: readonly number[], at: 'p50' | 'p99') => summarize(samples)[at];
      const versus = (measure: string, subject: string, value: number, baseline: number): Comparison => ({
        measure,
        subject: { name: subject, value },
        baseline: { name: 'simulator direct', value: baseline },
        unit: 'ms',
        better: 'lower',
      });
      const comparisons: Comparison[] = [];
      const metrics: Metric[] = [];
      for (const pass of passes) {
        for (const at of ['p50', 'p99'] as const) {
          comparisons.push(
            versus(`${at}, ${label(pass.level)}`, 'command → result event', p(pass.timings.map((timing) => timing.result), at), p(pass.direct, at)),
            versus(`${at}, ${label(pass.level)}`, 'command → Postgres row', p(pass.timings.map((timing) => timing.row), at), p(pass.direct, at)),
          );
        }
        comparisons.push({
          measure: `throughput, ${label(pass.level)}`,
          subject: { name: 'commands through to their result', value: commands / pass.seconds },
          baseline: { name: 'simulator direct', value: commands / pass.directSeconds },
          unit: 'per s',
          better: 'higher',
        });
        metrics.push(
          { name: `commands per second to the result, ${label(pass.level)}`, value: commands / pass.seconds, unit: 'per s' },
          { name: `direct creates per second, ${label(pass.level)}`, value: commands / pass.directSeconds, unit: 'per s' },
        );
      }
      const sequentialDirect = passes[0]!.direct;
      comparisons.push(
        versus(`p99 at ${half}/s (half the maximum)`, 'command → Postgres row', p(halfRate.map((timing) => timing.row), 'p99'), p(sequentialDirect, 'p99')),
        versus('p50, wait=projected sequential', 'POST ?wait=projected answered', p(waitedSequential, 'p50'), p(sequentialDirect, 'p50')),
        versus('p99, wait=projected sequential', 'POST ?wait=projected answered', p(waitedSequential, 'p99'), p(sequentialDirect, 'p99')),
      );
      metrics.push(
        { name: 'maximum commands per second reached (closed loop)', value: maximum, unit: 'per s' },
        { name: `p99 command → row at ${half}/s`, value: p(halfRate.map((timing) => timing.row), 'p99'), unit: 'ms' },
        { name: 'p50 command → result, sequential', value: p(passes[0]!.timings.map((timing) => timing.result), 'p50'), unit: 'ms' },
      );
      return {
        parameters: {
          commands,
          'in flight': levels.join(', '),
          'open-loop rate': `${half}/s`,
          warmup,
          'stack LOG_LEVEL': 'info',
          'github simulator latency': '0 ms (loopback, no injected delay)',
          'api key': 'one key for every request (commands:send:github.issue.*, stream:github.issue.*), budget 1,000,000/s',
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
            'database; the simulator’s rate limit is raised. Creates are keyed by their own command id, so commands for one ' +
            'repository spread over the partitions of the commands topic.',
          'Closed loop at each level: each slot sends its next command when the previous one’s result event arrived (the ' +
            'baseline: when the simulator answered); rows and frames are collected afterwards. The open loop sends at half ' +
            'the best closed-loop rate, on time whatever is in flight. wait=projected answers 200 only once the sync worker ' +
            'has committed the issue (learnt from the projection-positions topic).',
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
