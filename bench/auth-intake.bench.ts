import { Grants, mintKey, type Principal } from '@switchyard/auth';
import { createAdapter, type Adapter } from '@switchyard/api-gateway-adapter/wiring';
import { loadApiGatewayAdapterConfig } from '@switchyard/api-gateway-adapter/config';
import { createEvent, topics } from '@switchyard/events';
import { createKafka, EventProducer, KafkaAdmin, silentKafkaLogger, TopicNames } from '@switchyard/kafka';
import { createLogger, createMetricsRegistry, type FastifyInstance } from '@switchyard/service-runtime';
import { uniqueName } from '@switchyard/testkit/node';
import { Agent, request } from 'undici';
import { defineBenchmark, summarize, type BenchContext } from './benchmark.js';

/**
 * What checking keys costs the command intake: `POST /v1/commands` requests per second through the adapter as it
 * runs (the key looked up, its hash compared, its scopes checked for the command type, its budget taken) against the
 * same adapter build whose key check is replaced by a fixed principal. Both adapters share one Kafka topic set and
 * run in this process; rounds alternate between them so drift on the machine hits both alike. The commands are
 * projection rebuilds, which the adapter writes and then leaves to the sync worker (none runs), so the measure is the
 * intake alone: HTTP, validation, the produce to Kafka.
 */

function lifecycle() {
  const steps: (() => Promise<void> | void)[] = [];
  return {
    isStopping: false,
    onStop: (_name: string, run: () => Promise<void> | void) => void steps.push(run),
    fatal: (error: unknown) => {
      throw error instanceof Error ? error : new Error(String(error));
    },
    async stop() {
      for (const step of steps) await step();
    },
  };
}

/** The benchmark's stand-in for the key check: every request is the same admin principal. */
function bypass(principal: Principal): (app: FastifyInstance) => void {
  return (app) => {
    app.decorateRequest('principal', undefined);
    app.addHook('onRequest', async (incoming) => {
      incoming.principal = principal;
    });
  };
}

async function start(context: BenchContext, prefix: string, guardForBenchmark?: (app: FastifyInstance) => void) {
  const config = loadApiGatewayAdapterConfig({
    KAFKA_BROKERS: context.brokers,
    TOPIC_PREFIX: prefix,
    KAFKA_GROUP_ID: uniqueName('bench-agw-'),
    PORT: '0',
    HOST: '127.0.0.1',
    LOG_LEVEL: 'silent',
    COMMAND_RATE_PER_SECOND: '1000000',
    COMMAND_RATE_BURST: '1000000',
  });
  const steps = lifecycle();
  const adapter: Adapter = createAdapter(config, {
    logger: createLogger({ service: 'bench', level: 'silent' }),
    registry: createMetricsRegistry('bench'),
    lifecycle: steps,
    ...(guardForBenchmark === undefined ? {} : { guardForBenchmark }),
  });
  await adapter.start();
  const address = adapter.app.server.address();
  const port = typeof address === 'object' && address !== null ? address.port : 0;
  return { url: `http://127.0.0.1:${port}`, stop: () => steps.stop() };
}

/** `count` POSTs, `inFlight` at a time; returns requests per second and every latency. */
async function round(url: string, authorization: string, count: number, inFlight: number, dispatcher: Agent) {
  const body = JSON.stringify({ type: 'switchyard.projection.rebuild', input: { projection: 'entities' } });
  const latencies: number[] = [];
  let next = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: inFlight }, async () => {
      while (next < count) {
        next += 1;
        const sent = performance.now();
        const answer = await request(`${url}/v1/commands`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', authorization },
          body,
          dispatcher,
        });
        await answer.body.dump();
        if (answer.statusCode !== 202) throw new Error(`HTTP ${answer.statusCode}`);
        latencies.push(performance.now() - sent);
      }
    }),
  );
  return { perSecond: (count / (performance.now() - started)) * 1000, latencies };
}

export default defineBenchmark({
  name: 'auth-intake',
  description: 'POST /v1/commands per second with the API-key check, against the same intake with the check replaced by a fixed principal.',
  async run(context) {
    const requests = context.options.number('requests', 2000);
    const inFlight = context.options.number('concurrency', 16);
    const rounds = context.options.number('rounds', 5);
    const prefix = `${uniqueName('bench')}.`;
    const names = new TopicNames(prefix);
    const kafka = createKafka({ brokers: context.brokers.split(','), clientId: uniqueName('bench-'), logger: silentKafkaLogger });
    const admin = new KafkaAdmin(kafka, names, silentKafkaLogger);
    await admin.connect();
    await admin.provision();
    const minted = mintKey();
    const record = { keyId: minted.keyId, name: 'bench', hash: minted.hash, scopes: ['admin'], createdAt: new Date().toISOString(), createdBy: 'bench' };
    const producer = new EventProducer(kafka, names);
    await producer.connect();
    await producer.send(topics.apiKeys, [createEvent({ type: 'switchyard.api_key.upserted', source: 'bench', subject: record.keyId, data: record })]);
    await producer.disconnect();
    const principal: Principal = { keyId: record.keyId, name: 'bench', grants: new Grants(['admin']), limits: undefined, auth: { type: 'api_key', id: record.keyId } };

    const checked = await start(context, prefix);
    const bypassed = await start(context, prefix, bypass(principal));
    const dispatcher = new Agent({ connections: inFlight });
    const authorization = `Bearer ${minted.key}`;
    const withCheck: number[] = [];
    const without: number[] = [];
    const latencyWith: number[] = [];
    const latencyWithout: number[] = [];
    try {
      context.log('warming up');
      await round(checked.url, authorization, 300, inFlight, dispatcher);
      await round(bypassed.url, authorization, 300, inFlight, dispatcher);
      for (let index = 0; index < rounds; index += 1) {
        // Alternate which goes first, so neither always follows the other's Kafka backlog.
        const order = index % 2 === 0 ? (['checked', 'bypassed'] as const) : (['bypassed', 'checked'] as const);
        for (const which of order) {
          const result = await round(which === 'checked' ? checked.url : bypassed.url, authorization, requests, inFlight, dispatcher);
          (which === 'checked' ? withCheck : without).push(result.perSecond);
          (which === 'checked' ? latencyWith : latencyWithout).push(...result.latencies);
          context.log(`round ${index + 1} ${which}: ${result.perSecond.toFixed(0)}/s`);
        }
      }
    } finally {
      await dispatcher.close();
      await checked.stop();
      await bypassed.stop();
      await admin.deleteTopics(Object.values(topics).map((spec) => names.name(spec)));
      await admin.disconnect();
    }
    const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
    return {
      parameters: { requests, concurrency: inFlight, rounds },
      latencies: [
        { group: 'POST /v1/commands', series: [{ name: 'key checked', samplesMs: latencyWith }, { name: 'check bypassed', samplesMs: latencyWithout }] },
      ],
      metrics: [
        { name: 'requests per second, key checked (median round)', value: median(withCheck), unit: 'per s' },
        { name: 'requests per second, check bypassed (median round)', value: median(without), unit: 'per s' },
      ],
      comparisons: [
        {
          measure: 'intake throughput (median of rounds)',
          subject: { name: 'key checked', value: median(withCheck) },
          baseline: { name: 'check bypassed', value: median(without) },
          unit: 'per s',
          better: 'higher',
        },
        {
          measure: 'p50 latency',
          subject: { name: 'key checked', value: summarize(latencyWith).p50 },
          baseline: { name: 'check bypassed', value: summarize(latencyWithout).p50 },
          unit: 'ms',
          better: 'lower',
        },
      ],
      notes: [
        'Both adapters run in this process on the same topics and answer in turn; each request is one command written to Kafka and acknowledged before the 202. The checked one authenticates each request as it always does: parse the key, look it up, SHA-256 and compare in constant time, check the route requirement and the command type, take from the budget. The bypassed one sets a fixed admin principal and keeps everything else, budget included.',
      ],
    };
  },
});
