import type { AddressInfo } from 'node:net';
import {
  createEvent,
  entityKey,
  sourceVersions,
  type Envelope,
  type topics,
  type TopicEventInput,
} from '@switchyard/events';
import { KafkaAdmin, type Kafka, type KafkaError, type TopicNames } from '@switchyard/kafka';
import { createLogger, createMetricsRegistry, type Env } from '@switchyard/service-runtime';
import { testLogger, uniqueName, waitFor, type WaitOptions } from '@switchyard/testkit';
import { WebSocket, type ClientOptions } from 'ws';
import { buildApp, streamOptions } from '../src/app.js';
import { loadWsFanoutConfig } from '../src/config.js';
import { Hub, hubOptions } from '../src/hub.js';
import { fanoutGroupId, LiveEvents, STREAMED_TOPICS } from '../src/live.js';

/** The service's parts wired as main.ts wires them, in this process, on an OS-chosen port. */
export interface RunningFanout {
  readonly url: string;
  readonly wsUrl: string;
  readonly hub: Hub;
  readonly groupId: string;
  readonly fatal: KafkaError[];
  /** The value of one metric sample in the Prometheus text, or undefined when absent. */
  metric(name: string, labels?: Record<string, string>): Promise<number | undefined>;
  /** Shuts down in main.ts's order. */
  stop(): Promise<void>;
}

export async function startFanout(options: {
  kafka: Kafka;
  brokers: string;
  names: TopicNames;
  env?: Env;
  /** Runs once the port is open, before Kafka consumption starts (clients may connect then, as in main.ts). */
  onListening?: (wsUrl: string) => Promise<void>;
  /** Runs after the live offsets of every streamed topic are captured, before the consumer joins its group. */
  afterCapture?: () => Promise<void>;
}): Promise<RunningFanout> {
  const config = loadWsFanoutConfig({
    KAFKA_BROKERS: options.brokers,
    TOPIC_PREFIX: options.names.prefix,
    PORT: '0',
    HOST: '127.0.0.1',
    ...options.env,
  });
  const logger = createLogger({ service: 'ws-fanout-test', level: process.env['SWITCHYARD_TEST_LOGS'] ? 'debug' : 'silent' });
  const registry = createMetricsRegistry('ws-fanout');
  const admin = new KafkaAdmin(options.kafka, options.names, testLogger);
  await admin.connect();
  const hub = new Hub(hubOptions(config, logger, registry));
  const fatal: KafkaError[] = [];
  const lastTopic = options.names.name(STREAMED_TOPICS[STREAMED_TOPICS.length - 1]!);
  const live = new LiveEvents({
    kafka: options.kafka,
    names: options.names,
    admin: {
      partitionOffsets: async (topic) => {
        const offsets = await admin.partitionOffsets(topic);
        if (topic === lastTopic) await options.afterCapture?.();
        return offsets;
      },
      deleteGroups: (groupIds) => admin.deleteGroups(groupIds),
    },
    groupId: fanoutGroupId(config.TOPIC_PREFIX, uniqueName('test-')),
    logger,
    registry,
    maxWaitTimeMs: 100,
    onEvent: (event, receivedAt) => hub.publish(event, receivedAt),
    onFatal: (error) => fatal.push(error),
  });
  let stopping = false;
  const app = buildApp({
    logger,
    registry,
    isStopping: () => stopping,
    checks: [
      ...admin.readinessChecks(),
      { name: 'consumer', check: () => live.check() },
    ],
    stream: streamOptions(config, hub),
  });
  await app.listen({ port: config.PORT, host: config.HOST });
  hub.start();
  const { port } = app.server.address() as AddressInfo;
  const url = `http://127.0.0.1:${port}`;
  await options.onListening?.(`ws://127.0.0.1:${port}/v1/stream`);
  await live.start();
  await waitFor(async () => (await fetch(`${url}/readyz`)).ok, { what: 'ws-fanout /readyz' });
  return {
    url,
    wsUrl: `ws://127.0.0.1:${port}/v1/stream`,
    hub,
    groupId: live.groupId,
    fatal,
    async metric(name, labels = {}) {
      const text = await (await fetch(`${url}/metrics`)).text();
      return metricValue(text, name, labels);
    },
    async stop() {
      stopping = true;
      await hub.closeAll();
      await live.stop();
      await live.deleteGroup();
      await app.close();
      await admin.disconnect();
    },
  };
}

/** Reads one sample from Prometheus text: the line for `name` whose labels include all of `labels`. */
export function metricValue(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue;
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!match || match[1] !== name) continue;
    const present = new Map([...(match[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((m) => [m[1], m[2]]));
    if (Object.entries(labels).every(([key, value]) => present.get(key) === value)) return Number(match[3]);
  }
  return undefined;
}

export interface ServerFrame {
  readonly op: string;
  readonly id?: string;
  readonly subscription?: string;
  readonly event?: Envelope;
  readonly code?: string;
  readonly message?: string;
  readonly field?: string;
}

export interface Closed {
  readonly code: number;
  readonly reason: string;
}

/** A WebSocket client over loopback that keeps every frame it receives. */
export class TestClient {
  readonly socket: WebSocket;
  readonly frames: ServerFrame[] = [];
  readonly closed: Promise<Closed>;
  private closedWith: Closed | undefined;

  private constructor(socket: WebSocket) {
    this.socket = socket;
    socket.on('message', (data: Buffer) => this.frames.push(JSON.parse(data.toString('utf8')) as ServerFrame));
    this.closed = new Promise((resolve) =>
      socket.once('close', (code, reason) => {
        this.closedWith = { code, reason: reason.toString('utf8') };
        resolve(this.closedWith);
      }),
    );
  }

  static async connect(url: string, options: ClientOptions = {}): Promise<TestClient> {
    const socket = new WebSocket(url, options);
    const client = new TestClient(socket);
    await new Promise<void>((resolve, reject) => {
      socket.once('open', () => resolve());
      socket.once('error', reject);
    });
    socket.on('error', () => {});
    return client;
  }

  get isClosed(): boolean {
    return this.closedWith !== undefined;
  }

  send(message: unknown): void {
    this.socket.send(JSON.stringify(message));
  }

  async subscribe(id: string, filter?: Record<string, unknown>): Promise<void> {
    this.send(filter === undefined ? { op: 'subscribe', id } : { op: 'subscribe', id, filter });
    await this.waitForFrame((frame) => frame.op === 'subscribed' && frame.id === id, { what: `subscribed ${id}` });
  }

  async waitForFrame(predicate: (frame: ServerFrame) => boolean, options: WaitOptions = {}): Promise<ServerFrame> {
    return waitFor(() => this.frames.find(predicate), { what: 'a frame', ...options });
  }

  /** Event frames, optionally of one subscription. */
  events(subscription?: string): Envelope[] {
    return this.frames
      .filter((frame) => frame.op === 'event' && (subscription === undefined || frame.subscription === subscription))
      .flatMap((frame) => (frame.event === undefined ? [] : [frame.event]));
  }

  eventIds(subscription?: string): string[] {
    return this.events(subscription).map((event) => event.id);
  }

  async waitForEvents(count: number, subscription?: string, options: WaitOptions = {}): Promise<Envelope[]> {
    await waitFor(() => this.events(subscription).length >= count, {
      what: `${count} events${subscription === undefined ? '' : ` on ${subscription}`}`,
      ...options,
    });
    return this.events(subscription);
  }

  close(): void {
    this.socket.close();
  }
}

/** Lets in-flight frames arrive before asserting that something did not. */
export function settle(ms = 500): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

const UPDATED_AT = '2026-11-24T05:00:00Z';

export function issueUpserted(
  number: number,
  options: { correlationId?: string; body?: string; repo?: string } = {},
): TopicEventInput<typeof topics.entities> {
  const entityId = `acme/${options.repo ?? 'widgets'}#${number}`;
  const version = sourceVersions.githubIssue({ updated_at: UPDATED_AT }, 1795496207044000n + BigInt(number));
  return createEvent({
    type: 'github.issue.upserted',
    source: 'switchyard/test',
    subject: entityKey('github', 'issue', entityId),
    entityVersion: version,
    correlationId: options.correlationId,
    data: {
      source: 'github',
      entityType: 'issue',
      entityId,
      version,
      origin: { kind: 'poll', id: 'run-1', connection: 'github' },
      state: {
        id: number,
        number,
        title: `issue ${number}`,
        body: options.body ?? null,
        state: 'open',
        labels: [],
        created_at: UPDATED_AT,
        updated_at: UPDATED_AT,
      },
    },
  });
}

export function issueDeleted(number: number): TopicEventInput<typeof topics.entities> {
  const entityId = `acme/widgets#${number}`;
  const version = sourceVersions.deletion(1795496207045000n, 1795496207045000n + BigInt(number));
  return createEvent({
    type: 'github.issue.deleted',
    source: 'switchyard/test',
    subject: entityKey('github', 'issue', entityId),
    entityVersion: version,
    data: {
      source: 'github',
      entityType: 'issue',
      entityId,
      version,
      origin: { kind: 'webhook', id: 'delivery-1', connection: 'github' },
      state: null,
    },
  });
}

export function customerUpserted(id: string): TopicEventInput<typeof topics.entities> {
  const version = sourceVersions.stripe(1795496207, 1795496207046000n);
  return createEvent({
    type: 'stripe.customer.upserted',
    source: 'switchyard/test',
    subject: entityKey('stripe', 'customer', id),
    entityVersion: version,
    data: {
      source: 'stripe',
      entityType: 'customer',
      entityId: id,
      version,
      origin: { kind: 'webhook', id: 'evt_1', connection: 'stripe' },
      state: { id, object: 'customer', created: 1795496207 },
    },
  });
}

export function commandSucceeded(commandId: string, correlationId?: string): TopicEventInput<typeof topics.commandResults> {
  return createEvent({
    type: 'switchyard.command.succeeded',
    source: 'switchyard/test',
    subject: commandId,
    correlationId,
    causationId: commandId,
    data: { commandId, commandType: 'github.issue.update', status: 'succeeded', attempts: 1, durationMs: 12 },
  });
}

export function healthChanged(api: string): TopicEventInput<typeof topics.apiHealth> {
  const now = new Date().toISOString();
  return createEvent({
    type: 'switchyard.api.health_changed',
    source: 'switchyard/test',
    subject: api,
    data: {
      api,
      status: 'down',
      previous: 'up',
      since: now,
      checkedAt: now,
      latencyMs: null,
      httpStatus: 503,
      reason: 'http_503',
      consecutiveFailures: 2,
    },
  });
}
