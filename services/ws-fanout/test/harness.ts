import type { IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { BEARER_SUBPROTOCOL_PREFIX, serviceAuth, STREAM_SUBPROTOCOL, type ServiceAuth } from '@switchyard/auth';
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
import { testLogger, uniqueName, waitFor, type TestKey, type TestKeys, type WaitOptions } from '@switchyard/testkit';
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
  readonly auth: ServiceAuth;
  /** A key with `stream:**`, published before the service started (so it knows it). */
  readonly key: TestKey;
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
  /** The test's `keys` fixture (or `testKeys(producer)`): the service reads keys from the same api-keys topic. */
  keys: TestKeys;
  env?: Env;
  /** Runs once the port is open, before the api keys are read (upgrades get 503 then, as in main.ts). */
  beforeKeys?: (wsUrl: string) => Promise<void>;
  /** Runs once the port is open and the keys are read, before event consumption starts (clients may connect then). */
  onListening?: (wsUrl: string, key: TestKey) => Promise<void>;
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
  const fatal: KafkaError[] = [];
  const key = await options.keys.create(['stream:**'], { name: 'ws-fanout test stream' });
  const auth = serviceAuth({ kafka: options.kafka, names: options.names, admin, service: 'ws-fanout', logger, onFatal: (error) => fatal.push(error) });
  const hub = new Hub(hubOptions(config, logger, registry));
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
      auth.readiness,
      { name: 'consumer', check: () => live.check() },
    ],
    auth,
    stream: streamOptions(config, hub),
  });
  await app.listen({ port: config.PORT, host: config.HOST });
  hub.start();
  const { port } = app.server.address() as AddressInfo;
  const url = `http://127.0.0.1:${port}`;
  const wsUrl = `ws://127.0.0.1:${port}/v1/stream`;
  await options.beforeKeys?.(wsUrl);
  await auth.start();
  await auth.store.loaded;
  await options.onListening?.(wsUrl, key);
  await live.start();
  await waitFor(async () => (await fetch(`${url}/readyz`)).ok, { what: 'ws-fanout /readyz' });
  return {
    url,
    wsUrl,
    hub,
    auth,
    key,
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
      await auth.stop();
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

/** How a client presents its key: `Authorization: Bearer <key>` (Node), or the subprotocols a browser offers. */
export type Presentation = 'header' | 'subprotocol';

export interface ConnectOptions extends ClientOptions {
  /** Default `header`. */
  readonly via?: Presentation;
}

/** The subprotocols and client options that present `key` as `via` says (a key string or a test key). */
export function presenting(key: TestKey | string, via: Presentation = 'header', options: ClientOptions = {}): { protocols: string[]; options: ClientOptions } {
  const text = typeof key === 'string' ? key : key.key;
  if (via === 'subprotocol') return { protocols: [STREAM_SUBPROTOCOL, `${BEARER_SUBPROTOCOL_PREFIX}${text}`], options };
  return { protocols: [], options: { ...options, headers: { ...options.headers, authorization: `Bearer ${text}` } } };
}

/** A WebSocket client over loopback that keeps every frame it receives. */
export class TestClient {
  readonly socket: WebSocket;
  readonly frames: ServerFrame[] = [];
  readonly closed: Promise<Closed>;
  /** performance.now() when the close arrived. */
  closedAt: number | undefined;
  private closedWith: Closed | undefined;

  private constructor(socket: WebSocket) {
    this.socket = socket;
    socket.on('message', (data: Buffer) => this.frames.push(JSON.parse(data.toString('utf8')) as ServerFrame));
    this.closed = new Promise((resolve) =>
      socket.once('close', (code, reason) => {
        this.closedAt = performance.now();
        this.closedWith = { code, reason: reason.toString('utf8') };
        resolve(this.closedWith);
      }),
    );
  }

  /** Connects presenting `key` (in the Authorization header unless `via: 'subprotocol'`). */
  static async connect(url: string, key: TestKey | string, { via, ...clientOptions }: ConnectOptions = {}): Promise<TestClient> {
    const { protocols, options } = presenting(key, via, clientOptions);
    const socket = new WebSocket(url, protocols, options);
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

/** What an upgrade request got: the HTTP refusal, or 101 and the subprotocol the server selected. */
export interface UpgradeAnswer {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  /** The refusal's body as text ('' on 101). */
  readonly body: string;
  /** The selected subprotocol on 101 ('' for none). */
  readonly protocol: string;
}

/** Tries an upgrade with these subprotocols and options (see `presenting`); an accepted socket is dropped at once. */
export function upgradeResponse(url: string, credentials: { protocols: string[]; options: ClientOptions } = { protocols: [], options: {} }): Promise<UpgradeAnswer> {
  const socket = new WebSocket(url, credentials.protocols, credentials.options);
  return new Promise((resolve, reject) => {
    socket.once('unexpected-response', (_request, response) => {
      let body = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => {
        body += chunk;
      });
      response.on('end', () => resolve({ status: response.statusCode ?? 0, headers: response.headers, body, protocol: '' }));
      response.on('error', reject);
    });
    socket.once('open', () => {
      resolve({ status: 101, headers: {}, body: '', protocol: socket.protocol });
      socket.terminate();
    });
    socket.once('error', reject);
  });
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
