import { CommandApiError } from '@switchyard/api';
import type { Connection, ExecuteContext, ExecutionOutcome } from '@switchyard/connectors';
import {
  AUTH_TYPES,
  commandCatalog,
  isCommandType,
  topics,
  type CommandError,
  type CommandInput,
  type CommandStatus,
  type CommandType,
  type TopicEvent,
  type Topics,
} from '@switchyard/events';
import type { ConsumedRecord, DeadLetters, EventProducer, PartitionBatch } from '@switchyard/kafka';
import type { Logger } from '@switchyard/service-runtime';
import type { AdapterMetrics } from './metrics.js';
import { commandContext, entityRef, entityUpserted, resultEvent, type CommandContext, type ResultFields } from './results.js';
import { isFinished, type CommandsView } from './view.js';

export type CommandEvent = TopicEvent<Topics['commands']>;

export interface CommandProcessorDeps {
  readonly producer: Pick<EventProducer, 'send'>;
  readonly deadLetters: Pick<DeadLetters, 'send'>;
  readonly view: Pick<CommandsView, 'get' | 'caughtUp' | 'noteResult'>;
  /** Configured connections by name. */
  readonly connections: ReadonlyMap<string, Connection>;
  /** Commands older than this are rejected as expired, not carried out. */
  readonly maxAgeMs: number;
  /** How long one pick-up of a command may take, lookups after a lost answer included. */
  readonly deadlineMs: number;
  /** Commands of one partition carried out at once (never two with the same Kafka key). */
  readonly concurrency: number;
  readonly logger: Logger;
  readonly metrics: AdapterMetrics;
  readonly now?: () => Date;
}

/** Thrown between attempts when the batch is no longer ours (rebalance, shutdown): leave the command unmarked. */
class CommandAbandoned extends Error {
  constructor() {
    super('the batch went stale between attempts');
    this.name = 'CommandAbandoned';
  }
}

/** The envelope attributes of a record that did not decode, as far as they can be read. */
interface RawAttributes {
  id?: string;
  type?: string;
  subject?: string;
  correlationid?: string;
  traceparent?: string;
  authtype?: string;
  authid?: string;
}

function readRaw(value: Buffer | null): RawAttributes {
  if (value === null || value.length === 0) return {};
  let json: unknown;
  try {
    json = JSON.parse(value.toString('utf8'));
  } catch {
    return {};
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) return {};
  const out: RawAttributes = {};
  for (const name of ['id', 'type', 'subject', 'correlationid', 'traceparent', 'authtype', 'authid'] as const) {
    const attribute = (json as Record<string, unknown>)[name];
    if (typeof attribute === 'string' && attribute.length > 0 && attribute.length <= 200) out[name] = attribute;
  }
  return out;
}

function commandError(error: CommandApiError): CommandError {
  return {
    code: error.code,
    message: error.message,
    retriable: error.retriable,
    ...(error.field === undefined ? {} : { field: error.field }),
  };
}

/**
 * Handles the commands topic for the adapter.
 *
 * Within a partition batch, commands with different Kafka keys run concurrently (up to `concurrency`); commands
 * with the same key (the same entity) run one after another in offset order, and the consumer's position never
 * moves past a command that has not finished. Per command:
 * - a record that does not decode → `rejected` (commandId from its `id`, else `<topic>/<partition>/<offset>`) and
 *   a dead letter with the original bytes, whichever service its type names;
 * - a command another service handles → skipped;
 * - a command that already has a terminal result (a redelivery after a crash or rebalance) → nothing: it was
 *   carried out once and its result is on the topic;
 * - older than the maximum age, for a connection not configured, of a type no connector carries out → `rejected`;
 *   (an expired command an earlier owner may have sent is only looked for, never sent again);
 * - otherwise `accepted`, then carried out by its connection (connectors/kit: retries, lookups after a lost
 *   answer), then the entity event (its position recorded) followed by `succeeded`, or `failed` with a code.
 * Results are written before the record is marked done; offsets are committed to Kafka.
 */
export class CommandProcessor {
  private readonly deps: CommandProcessorDeps;
  private readonly now: () => Date;
  /**
   * Partitions whose earlier owners' results the view has read since this member got them: once the view has read
   * the command-results topic up to where it ended after the assignment, every result an earlier owner wrote is
   * known (it finished its batch before the group could move the partition), and so is every result this member
   * writes from then on (the view is told at once). Cleared on every assignment.
   */
  private readonly synced = new Map<number, Promise<void>>();

  constructor(deps: CommandProcessorDeps) {
    this.deps = deps;
    this.now = deps.now ?? (() => new Date());
  }

  /** Call on every new assignment: what earlier owners did must be read again before their partitions go on. */
  readonly onAssignment = (): void => {
    this.synced.clear();
  };

  /** Once per partition and assignment: the view reads every result written so far. */
  private syncPoint(batch: PartitionBatch<CommandEvent>): Promise<void> {
    let point = this.synced.get(batch.partition);
    if (point === undefined) {
      point = this.deps.view.caughtUp([topics.commandResults]);
      point.catch(() => this.synced.delete(batch.partition));
      this.synced.set(batch.partition, point);
    }
    return point;
  }

  readonly handleBatch = async (batch: PartitionBatch<CommandEvent>): Promise<void> => {
    // Results written by any instance before this member got the partition are known before anything is carried
    // out (a redelivered command with a terminal result is then skipped).
    await this.syncPoint(batch);
    const lanes = new Map<string, ConsumedRecord<CommandEvent>[]>();
    for (const record of batch.records) {
      const laneKey = record.key?.toString('utf8') ?? `${record.offset}`;
      const lane = lanes.get(laneKey) ?? [];
      lane.push(record);
      lanes.set(laneKey, lane);
    }
    const done = new Set<string>();
    let next = BigInt(batch.records[0]?.offset ?? batch.nextOffset);
    let abandoned = false;
    const advance = () => {
      while (done.has(next.toString())) next += 1n;
      if (!abandoned && !batch.isStale()) batch.markDone(next.toString());
    };
    const queue = [...lanes.values()];
    const runLane = async () => {
      for (let lane = queue.shift(); lane !== undefined; lane = queue.shift()) {
        for (const record of lane) {
          if (abandoned || batch.isStale()) return;
          const finished = await this.handleRecord(record, batch);
          if (!finished) {
            abandoned = true;
            return;
          }
          done.add(record.offset);
          advance();
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(this.deps.concurrency, queue.length) }, runLane));
    if (!abandoned && !batch.isStale()) batch.markDone();
  };

  /** False when the command was abandoned and must be read again. */
  private async handleRecord(record: ConsumedRecord<CommandEvent>, batch: PartitionBatch<CommandEvent>): Promise<boolean> {
    if (!record.decoded.ok) {
      await this.refuseUndecodable(record);
      return true;
    }
    const command = record.decoded.event;
    if (commandCatalog[command.type].handledBy !== 'api-gateway-adapter') return true;
    const known = this.deps.view.get(command.id);
    if (isFinished(known)) {
      this.deps.metrics.redelivered.inc({ type: command.type });
      return true;
    }
    const context = commandContext(command);
    const connection = this.deps.connections.get(command.data.connection);
    const provider = command.type.slice(0, command.type.indexOf('.'));
    if (connection === undefined || connection.connector.provider !== provider) {
      const why = connection === undefined ? 'is configured' : `is a ${provider} connection (it is ${connection.connector.provider})`;
      await this.reject(context, new CommandApiError('AGW_CONNECTION_INVALID', `no connection named "${command.data.connection}" ${why}`, { details: { field: 'data.connection' } }));
      return true;
    }
    if (!connection.handles(command.type)) {
      await this.reject(context, new CommandApiError('AGW_COMMAND_UNSUPPORTED', `type: ${command.type} is not carried out by the ${connection.connector.title} connector`, { details: { field: 'type' } }));
      return true;
    }
    const previous = known?.lastAttempt;
    const ageMs = this.now().getTime() - Date.parse(command.time);
    const expired = ageMs > this.deps.maxAgeMs;
    if (expired && previous === undefined) {
      const error = new CommandApiError(
        'AGW_COMMAND_EXPIRED',
        `the command is ${Math.round(ageMs / 1000)} s old, older than the ${Math.round(this.deps.maxAgeMs / 1000)} s allowed; not carried out`,
        { details: { field: 'time' } },
      );
      await this.reject(context, error);
      return true;
    }
    return this.execute(command, context, connection, batch, { previous, expired });
  }

  private async execute(
    command: CommandEvent,
    context: CommandContext,
    connection: Connection,
    batch: PartitionBatch<CommandEvent>,
    options: { previous: { attempt: number; startedAt: number } | undefined; expired: boolean },
  ): Promise<boolean> {
    const { producer, logger, metrics } = this.deps;
    const started = performance.now();
    let acceptedWritten = false;
    const keepAlive = async () => {
      if (batch.isStale()) throw new CommandAbandoned();
      // Keeps the group membership alive while a command waits between attempts.
      await batch.heartbeat();
    };
    const execution: ExecuteContext = {
      commandId: command.id,
      idempotencyKey: command.data.idempotencyKey,
      previous: options.previous,
      deadline: Date.now() + this.deps.deadlineMs,
      keepAlive,
      beforeAttempt: async (attempt, write) => {
        if (attempt > 1) await keepAlive();
        // A write that must happen once is recorded before every attempt, so whoever takes the command over knows
        // when the last one began; others only before the first.
        if (write === 'once' || !acceptedWritten) {
          await this.writeResult(context, 'accepted', { attempt });
          acceptedWritten = true;
        }
      },
    };

    let outcome: ExecutionOutcome;
    try {
      const input = command.data.input as CommandInput<CommandType>;
      const type: CommandType = command.type;
      outcome = options.expired
        ? await connection.recover(type, input, execution, new CommandApiError('AGW_COMMAND_EXPIRED', 'the command expired before it could be carried out; an earlier attempt did not carry it out', { details: { field: 'time' } }))
        : await connection.execute(type, input, execution);
    } catch (error) {
      if (!(error instanceof CommandAbandoned)) throw error;
      logger.warn({ commandId: context.commandId, type: command.type }, 'command abandoned between attempts; it will be read again');
      return false;
    }
    const durationMs = performance.now() - started;

    let status: CommandStatus;
    if (outcome.ok) {
      status = 'succeeded';
      // The entity event first, so the result can say where it is (for readers waiting on its projection).
      const [landed] = await producer.send(topics.entities, [entityUpserted(context, outcome.entity, command.data.connection, this.now())]);
      const position = landed === undefined ? undefined : { partition: landed.partition, offset: landed.offset };
      await this.writeResult(context, status, {
        attempts: outcome.attempts,
        entity: entityRef(outcome.entity, position),
        durationMs,
        ...(outcome.foundExisting ? { foundExisting: true } : {}),
      });
      logger.info(
        { commandId: context.commandId, type: command.type, status, attempts: outcome.attempts, entity: outcome.entity.entityId, found: outcome.foundExisting, ms: Math.round(durationMs) },
        'command succeeded',
      );
    } else {
      status = 'failed';
      const error = commandError(outcome.error);
      await this.writeResult(context, status, { attempts: outcome.attempts, error, durationMs });
      logger.warn(
        { commandId: context.commandId, type: command.type, status, attempts: outcome.attempts, code: error.code, ms: Math.round(durationMs) },
        `command failed: ${error.message}`,
      );
    }
    metrics.commandDuration.observe({ type: command.type, status }, durationMs / 1000);
    return true;
  }

  /** Writes a result, waits for Kafka, and tells the view at once. */
  private async writeResult(context: CommandContext, status: CommandStatus, fields: ResultFields): Promise<void> {
    const result = resultEvent(context, status, fields, this.now());
    await this.deps.producer.send(topics.commandResults, [result]);
    this.deps.view.noteResult(result as TopicEvent<Topics['commandResults']>);
    this.deps.metrics.commands.inc({ type: isCommandType(context.commandType) ? context.commandType : 'unknown', status });
  }

  private async reject(context: CommandContext, error: CommandApiError): Promise<void> {
    await this.writeResult(context, 'rejected', { error: commandError(error) });
    this.deps.logger.warn({ commandId: context.commandId, type: context.commandType, code: error.code }, `command rejected: ${error.message}`);
  }

  private async refuseUndecodable(record: ConsumedRecord<CommandEvent>): Promise<void> {
    if (record.decoded.ok) return;
    // The adapter is the one consumer that answers undecodable commands, whatever service their type names (the
    // sync worker skips them), so each gets exactly one rejection and one dead letter.
    const raw = readRaw(record.value);
    const { error } = record.decoded;
    const { field } = error;
    const context = commandContext({
      id: raw.id ?? `${record.topic}/${record.partition}/${record.offset}`,
      type: raw.type ?? '',
      correlationid: raw.correlationid,
      traceparent: raw.traceparent,
      ...(raw.authtype !== undefined && (AUTH_TYPES as readonly string[]).includes(raw.authtype) ? { authtype: raw.authtype, authid: raw.authid } : {}),
    });
    if (isFinished(this.deps.view.get(context.commandId))) return;
    const rejection: CommandError = { code: error.code, message: error.message, retriable: false, ...(field === undefined ? {} : { field }) };
    await Promise.all([
      this.writeResult(context, 'rejected', { error: rejection }),
      this.deps.deadLetters.send([{ record, why: { code: error.code, reason: error.message, field } }]),
    ]);
    this.deps.logger.warn(
      { commandId: context.commandId, topic: record.topic, partition: record.partition, offset: record.offset, code: error.code, field },
      `undecodable command rejected and dead-lettered: ${error.message}`,
    );
  }
}
