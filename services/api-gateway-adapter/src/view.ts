import { createHash, randomBytes } from 'node:crypto';
import type { CommandState, CommandStatusView, CommandTimelineEntry } from '@switchyard/api';
import { topics, type CommandError, type EntityRef, type TopicEvent, type Topics } from '@switchyard/events';
import { EventConsumer, type AssignedPartitions, type Kafka, type KafkaAdmin, type KafkaError, type PartitionBatch, type TopicNames } from '@switchyard/kafka';
import type { Logger, Registry } from '@switchyard/service-runtime';
import { Gauge } from 'prom-client';

/**
 * What every adapter instance knows about recent commands, learnt only from Kafka: the commands topic (what was
 * submitted, by anyone), the command-results topic (what became of it, whichever instance carried it out) and
 * the projection-positions topic (how far the sync worker has committed). It serves
 *
 * - intake idempotency: a repeated Idempotency-Key finds its command here, on any instance, after any restart;
 * - `GET /v1/commands/:id` and `?wait=result`: status, timeline, entity, error;
 * - `?wait=projected`: whether the entity event a command produced is committed to Postgres;
 * - carrying a command out at most once: before calling a provider the processor asks whether the command
 *   already has a terminal result, and when its last attempt began.
 *
 * Each instance reads every partition (a consumer group of its own, nothing committed, deleted at shutdown),
 * starting `windowMs` back in time, and is ready once it has read up to where the topics ended at start.
 * Records older than the window are forgotten.
 */

type CommandEvent = TopicEvent<Topics['commands']>;
type ResultEvent = TopicEvent<Topics['commandResults']>;
type PositionEvent = TopicEvent<Topics['projectionPositions']>;
type ViewTopic = Topics['commands'] | Topics['commandResults'] | Topics['projectionPositions'];

const VIEW_TOPICS = [topics.commands, topics.commandResults, topics.projectionPositions] as const;

export interface CommandRecord {
  readonly commandId: string;
  type: string;
  target: string;
  correlationId: string;
  /** The key that sent it (its `authid`), when it came with one. */
  authId: string | undefined;
  /** When the command was submitted (its `time`), epoch ms. */
  submittedAt: number | undefined;
  /** Fingerprint of what the command asks (type, connection, input, correlation id), for idempotency checks. */
  fingerprint: string | undefined;
  status: CommandState;
  updatedAt: number;
  timeline: CommandTimelineEntry[];
  attempts?: number;
  entity?: EntityRef;
  error?: CommandError;
  foundExisting?: boolean;
  /** The last `accepted` result: which attempt began, and when. */
  lastAttempt?: { attempt: number; startedAt: number };
  /** Result event ids seen, so a result read back after being noted is not counted twice. */
  readonly results: Set<string>;
}

const FINISHED = new Set<CommandState>(['succeeded', 'failed', 'rejected']);

export function isFinished(record: CommandRecord | undefined): boolean {
  return record !== undefined && FINISHED.has(record.status);
}

/** Canonical JSON: object keys sorted, so equal values give equal text. */
function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    return `{${Object.keys(value)
      .sort()
      .map((key) => `${JSON.stringify(key)}:${canonical((value as Record<string, unknown>)[key])}`)
      .join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}

/** What a command asks for, as a short hash: two submissions under one key must agree on it. */
export function commandFingerprint(command: Pick<CommandEvent, 'type' | 'correlationid' | 'data'>): string {
  const { connection, input } = command.data as { connection: string; input: unknown };
  return createHash('sha256').update(canonical({ type: command.type, connection, input, correlationId: command.correlationid })).digest('base64url').slice(0, 22);
}

export function statusView(record: CommandRecord): CommandStatusView {
  return {
    commandId: record.commandId,
    correlationId: record.correlationId,
    type: record.type,
    target: record.target,
    status: record.status,
    finished: isFinished(record),
    ...(record.submittedAt === undefined ? {} : { submittedAt: new Date(record.submittedAt).toISOString() }),
    updatedAt: new Date(record.updatedAt).toISOString(),
    // Commands and results are read from different topics, so they may arrive in either order.
    timeline: record.timeline.map((entry) => ({ ...entry })).sort((a, b) => Date.parse(a.at) - Date.parse(b.at)),
    ...(record.authId === undefined ? {} : { submittedBy: record.authId }),
    ...(record.attempts === undefined ? {} : { attempts: record.attempts }),
    ...(record.entity === undefined ? {} : { entity: record.entity }),
    ...(record.foundExisting === undefined ? {} : { foundExisting: record.foundExisting }),
    ...(record.error === undefined ? {} : { error: record.error }),
  };
}

interface Waiter {
  readonly done: () => boolean;
  readonly resolve: () => void;
}

export interface CommandsViewDeps {
  readonly kafka: Kafka;
  readonly names: TopicNames;
  readonly admin: Pick<KafkaAdmin, 'offsetsAt' | 'partitionOffsets' | 'deleteGroups' | 'clusterId'>;
  readonly logger: Logger;
  readonly registry: Registry;
  /** How far back the view reads at start, and how long it keeps a command. */
  readonly windowMs: number;
  readonly onFatal: (error: KafkaError) => void;
  readonly groupId?: string;
  readonly now?: () => number;
}

function key(topic: string, partition: number): string {
  return `${topic}/${partition}`;
}

export class CommandsView {
  private readonly deps: CommandsViewDeps;
  private readonly now: () => number;
  private readonly records = new Map<string, CommandRecord>();
  /** Next offset to read, per `topic/partition`. */
  private readonly read = new Map<string, bigint>();
  /** Where each partition starts (captured at start). */
  private readonly starts = new Map<string, string>();
  /** The sync worker's committed positions, `projection/topic/partition` → next offset (this cluster's only). */
  private readonly positions = new Map<string, bigint>();
  private readonly waiters = new Set<Waiter>();
  private consumer: EventConsumer<ViewTopic> | undefined;
  private clusterId = '';
  private ready = false;
  private positioned = false;
  private pruner: NodeJS.Timeout | undefined;
  readonly groupId: string;

  constructor(deps: CommandsViewDeps) {
    this.deps = deps;
    this.now = deps.now ?? Date.now;
    this.groupId = deps.groupId ?? `view-${randomBytes(6).toString('hex')}`;
    const size = this.records;
    new Gauge({
      name: 'switchyard_command_view_size',
      help: 'Commands in the command view (submitted within the idempotency window)',
      registers: [deps.registry],
      collect() {
        this.set(size.size);
      },
    });
  }

  /** Reads from `windowMs` ago up to where the topics end now; resolves once it has. */
  async start(): Promise<void> {
    const { names, admin } = this.deps;
    this.clusterId = await admin.clusterId();
    const since = this.now() - this.deps.windowMs;
    for (const spec of VIEW_TOPICS) {
      const topic = names.name(spec);
      // Positions are few and compacted: all of them. Commands and results: the window.
      const offsets = spec === topics.projectionPositions ? (await admin.partitionOffsets(topic)).map(({ partition, low }) => ({ partition, offset: low })) : await admin.offsetsAt(topic, since);
      for (const { partition, offset } of offsets) this.starts.set(key(topic, partition), offset);
    }
    const ends = await this.ends(VIEW_TOPICS);
    const consumer = new EventConsumer(this.deps.kafka, names, {
      groupId: this.groupId,
      topics: VIEW_TOPICS,
      fromBeginning: true,
      commitToKafka: false,
      maxWaitTimeMs: 100,
      partitionsConsumedConcurrently: VIEW_TOPICS.length,
      logger: this.deps.logger,
      onFatal: this.deps.onFatal,
    });
    consumer.onAssignment((assignment) => this.position(consumer, assignment));
    this.consumer = consumer;
    await consumer.start((batch) => this.handle(batch));
    await this.reached(ends, 120000);
    this.ready = true;
    this.pruner = setInterval(() => this.prune(), Math.min(60000, this.deps.windowMs / 10));
    this.pruner.unref();
  }

  /** For /readyz. */
  check(): void {
    if (!this.ready) throw new Error('the command view is still reading the commands and results of the idempotency window');
    if (this.consumer === undefined || !this.consumer.isJoined) throw new Error('the command view has no consumer group membership');
  }

  async stop(): Promise<void> {
    if (this.pruner) clearInterval(this.pruner);
    this.ready = false;
    await this.consumer?.stop();
    for (const waiter of this.waiters) waiter.resolve();
    this.waiters.clear();
  }

  async deleteGroup(): Promise<void> {
    await this.deps.admin.deleteGroups([this.groupId]);
  }

  get(commandId: string): CommandRecord | undefined {
    return this.records.get(commandId);
  }

  /**
   * Resolves once the view has read everything the given topics held when it was called: a result or command
   * acknowledged by Kafka before the call is then known. Rejects after `timeoutMs`.
   */
  async caughtUp(specs: readonly ViewTopic[] = [topics.commands, topics.commandResults], timeoutMs = 10000): Promise<void> {
    await this.reached(await this.ends(specs), timeoutMs);
  }

  private async ends(specs: readonly ViewTopic[]): Promise<Map<string, bigint>> {
    const ends = new Map<string, bigint>();
    for (const spec of specs) {
      const topic = this.deps.names.name(spec);
      for (const { partition, high } of await this.deps.admin.partitionOffsets(topic)) ends.set(key(topic, partition), BigInt(high));
    }
    return ends;
  }

  private reached(ends: Map<string, bigint>, timeoutMs: number): Promise<void> {
    const done = () => [...ends].every(([at, end]) => end <= BigInt(this.starts.get(at) ?? '0') || (this.read.get(at) ?? -1n) >= end);
    return this.until(done, timeoutMs).then((ok) => {
      if (!ok) throw new Error(`the command view did not catch up with Kafka within ${timeoutMs} ms`);
    });
  }

  /** Resolves true when `done()` holds (checked after every batch the view applies), false after `timeoutMs`. */
  private until(done: () => boolean, timeoutMs: number): Promise<boolean> {
    if (done()) return Promise.resolve(true);
    return new Promise((resolve) => {
      const waiter: Waiter = {
        done,
        resolve: () => {
          clearTimeout(timer);
          this.waiters.delete(waiter);
          resolve(done());
        },
      };
      const timer = setTimeout(waiter.resolve, timeoutMs);
      this.waiters.add(waiter);
    });
  }

  /** Resolves with the command once it has a terminal result, or with what is known after `timeoutMs`. */
  async waitForFinish(commandId: string, timeoutMs: number): Promise<CommandRecord | undefined> {
    await this.until(() => isFinished(this.records.get(commandId)), timeoutMs);
    return this.records.get(commandId);
  }

  /**
   * Resolves true once the sync worker's `projection` has committed past `offset` of `topic`/`partition` (within
   * this Kafka cluster), false after `timeoutMs`.
   */
  async waitForPosition(projection: string, topic: string, partition: number, offset: bigint, timeoutMs: number): Promise<boolean> {
    const at = `${projection}/${topic}/${partition}`;
    return this.until(() => (this.positions.get(at) ?? -1n) > offset, timeoutMs);
  }

  /** A command this instance just wrote: known at once, before it is read back. */
  noteCommand(command: CommandEvent): void {
    this.applyCommand(command);
    this.wake();
  }

  /** A result this instance just wrote. */
  noteResult(result: ResultEvent): void {
    this.applyResult(result);
    this.wake();
  }

  private position(consumer: EventConsumer<ViewTopic>, assignment: readonly AssignedPartitions[]): void {
    for (const { topic, partitions } of assignment) {
      for (const partition of partitions) {
        const at = key(topic, partition);
        const offset = this.read.get(at)?.toString() ?? this.starts.get(at) ?? '0';
        consumer.seek(topic, partition, offset);
      }
    }
    this.positioned = true;
  }

  private async handle(batch: PartitionBatch<CommandEvent | ResultEvent | PositionEvent>): Promise<void> {
    if (batch.isStale() || !this.positioned) return;
    for (const record of batch.records) {
      if (!record.decoded.ok) continue; // the processor dead-letters undecodable commands; results are ours
      const event = record.decoded.event;
      if (batch.spec === topics.commands) this.applyCommand(event as CommandEvent);
      else if (batch.spec === topics.commandResults) this.applyResult(event as ResultEvent);
      else this.applyPosition(event as PositionEvent);
    }
    batch.markDone();
    this.read.set(key(batch.topic, batch.partition), BigInt(batch.nextOffset));
    this.wake();
  }

  private wake(): void {
    for (const waiter of [...this.waiters]) if (waiter.done()) waiter.resolve();
  }

  private recordFor(commandId: string): CommandRecord {
    let record = this.records.get(commandId);
    if (record === undefined) {
      record = {
        commandId,
        type: '',
        target: '',
        correlationId: commandId,
        authId: undefined,
        submittedAt: undefined,
        fingerprint: undefined,
        status: 'submitted',
        updatedAt: this.now(),
        timeline: [],
        results: new Set(),
      };
      this.records.set(commandId, record);
    }
    return record;
  }

  private applyCommand(command: CommandEvent): void {
    const record = this.recordFor(command.id);
    if (record.fingerprint !== undefined) return; // a repeat of the same command id
    record.type = command.type;
    record.target = command.subject ?? '';
    record.correlationId = command.correlationid;
    record.authId = command.authid;
    record.submittedAt = Date.parse(command.time);
    record.fingerprint = commandFingerprint(command);
    if (record.timeline.length === 0) record.updatedAt = record.submittedAt;
    record.timeline.push({ status: 'submitted', at: command.time });
  }

  private applyResult(result: ResultEvent): void {
    const { data } = result;
    const record = this.recordFor(data.commandId);
    if (record.results.has(result.id)) return;
    record.results.add(result.id);
    if (record.type === '') record.type = data.commandType;
    // A result read before its command names the same sender: results repeat the command's Auth Context.
    record.authId ??= result.authid;
    const at = Date.parse(result.time);
    record.timeline.push({
      status: data.status,
      at: result.time,
      ...(data.attempt === undefined ? {} : { attempt: data.attempt }),
      ...(data.error === undefined ? {} : { errorCode: data.error.code }),
    });
    if (data.status === 'accepted') {
      record.lastAttempt = { attempt: data.attempt ?? 1, startedAt: at };
      if (!isFinished(record)) record.status = 'accepted';
    } else if (!isFinished(record)) {
      record.status = data.status;
      if (data.attempts !== undefined) record.attempts = data.attempts;
      if (data.entity !== undefined) record.entity = data.entity;
      if (data.error !== undefined) record.error = data.error;
      if (data.foundExisting !== undefined) record.foundExisting = data.foundExisting;
    }
    record.updatedAt = Math.max(record.updatedAt, at);
  }

  private applyPosition(event: PositionEvent): void {
    const { projection, topic, partition, nextOffset, cluster } = event.data;
    if (cluster !== this.clusterId) return;
    const at = `${projection}/${topic}/${partition}`;
    // The latest position read is the one that counts, even when lower (a topic recreated, a reset): then the
    // reader waits for the worker to pass its event again. A previous owner's late one only makes a reader wait.
    this.positions.set(at, BigInt(nextOffset));
  }

  /** Forgets commands last heard of more than a window ago. */
  private prune(): void {
    const oldest = this.now() - this.deps.windowMs;
    for (const [id, record] of this.records) if (record.updatedAt < oldest) this.records.delete(id);
  }
}
