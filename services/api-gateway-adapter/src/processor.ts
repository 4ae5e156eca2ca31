import {
  commandCatalog,
  isCommandType,
  topics,
  type CommandError,
  type CommandStatus,
  type TopicEvent,
  type Topics,
} from '@switchyard/events';
import type { ConsumedRecord, DeadLetters, EventProducer, PartitionBatch } from '@switchyard/kafka';
import type { Logger } from '@switchyard/service-runtime';
import { AdapterError } from './errors.js';
import type { CommandExecutor } from './executor.js';
import { isIssueCommandType, type IssueCommand } from './github/issues.js';
import type { AdapterMetrics } from './metrics.js';
import { commandContext, entityRef, entityUpserted, resultEvent, type CommandContext } from './results.js';

export type CommandEvent = TopicEvent<Topics['commands']>;
type OwnCommand = Extract<CommandEvent, { type: IssueCommand['type'] }>;

export interface CommandProcessorDeps {
  readonly producer: Pick<EventProducer, 'send' | 'sendBatches'>;
  readonly deadLetters: Pick<DeadLetters, 'send'>;
  readonly executor: Pick<CommandExecutor, 'execute' | 'hasConnection'>;
  /** Commands older than this are rejected as expired, not executed. */
  readonly maxAgeMs: number;
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
  for (const name of ['id', 'type', 'subject', 'correlationid', 'traceparent'] as const) {
    const attribute = (json as Record<string, unknown>)[name];
    if (typeof attribute === 'string' && attribute.length > 0 && attribute.length <= 200) out[name] = attribute;
  }
  return out;
}

function isImplemented(command: CommandEvent): command is OwnCommand {
  return isIssueCommandType(command.type);
}

function issueCommand(command: OwnCommand): IssueCommand {
  switch (command.type) {
    case 'github.issue.create':
      return { type: command.type, input: command.data.input };
    case 'github.issue.update':
      return { type: command.type, input: command.data.input };
  }
}

/**
 * Handles the commands topic for the adapter. Per record, in partition order:
 * - a record that does not decode → `rejected` (commandId from its `id`, else `<topic>/<partition>/<offset>`) and a
 *   dead letter with the original bytes, whichever service its type names;
 * - a command another service handles → skipped;
 * - older than the maximum age, or for a connection not configured → `rejected`;
 * - otherwise `accepted`, then executed with retries, then `succeeded` together with the entity event (one
 *   produce request), or `failed` with a code saying what happened.
 * A record is marked done only after its results are acknowledged by Kafka (at-least-once).
 */
export class CommandProcessor {
  private readonly deps: CommandProcessorDeps;
  private readonly now: () => Date;

  constructor(deps: CommandProcessorDeps) {
    this.deps = deps;
    this.now = deps.now ?? (() => new Date());
  }

  readonly handleBatch = async (batch: PartitionBatch<CommandEvent>): Promise<void> => {
    for (const record of batch.records) {
      if (batch.isStale()) return;
      const finished = await this.handleRecord(record, batch);
      if (!finished) return;
      batch.markDone((BigInt(record.offset) + 1n).toString());
    }
    if (!batch.isStale()) batch.markDone();
  };

  /** False when the command was abandoned and must be read again. */
  private async handleRecord(record: ConsumedRecord<CommandEvent>, batch: PartitionBatch<CommandEvent>): Promise<boolean> {
    if (!record.decoded.ok) {
      await this.refuseUndecodable(record);
      return true;
    }
    const command = record.decoded.event;
    if (commandCatalog[command.type].handledBy !== 'api-gateway-adapter') return true;
    const context = commandContext(command);
    if (!isImplemented(command)) {
      const error = new AdapterError('AGW_COMMAND_UNSUPPORTED', `type: ${command.type} is not implemented by this adapter`, {
        details: { field: 'type' },
      });
      await this.reject(context, error);
      return true;
    }

    const ageMs = this.now().getTime() - Date.parse(command.time);
    if (ageMs > this.deps.maxAgeMs) {
      const error = new AdapterError(
        'AGW_COMMAND_EXPIRED',
        `the command is ${Math.round(ageMs / 1000)} s old, older than the ${Math.round(this.deps.maxAgeMs / 1000)} s allowed; not executed`,
        { details: { field: 'time' } },
      );
      await this.reject(context, error);
      return true;
    }
    if (!this.deps.executor.hasConnection(command.data.connection)) {
      const error = new AdapterError('AGW_CONNECTION_INVALID', `no connection named "${command.data.connection}" is configured`, {
        details: { field: 'data.connection' },
      });
      await this.reject(context, error);
      return true;
    }
    return this.execute(command, context, batch);
  }

  private async execute(command: OwnCommand, context: CommandContext, batch: PartitionBatch<CommandEvent>): Promise<boolean> {
    const { producer, executor, logger, metrics } = this.deps;
    const started = performance.now();
    await producer.send(topics.commandResults, [resultEvent(context, 'accepted', {}, this.now())]);
    metrics.commands.inc({ type: command.type, status: 'accepted' });

    let outcome;
    try {
      outcome = await executor.execute(issueCommand(command), command.data.connection, {
        beforeRetry: async () => {
          if (batch.isStale()) throw new CommandAbandoned();
          // Keeps the group membership alive while a command waits between attempts.
          await batch.heartbeat();
        },
      });
    } catch (error) {
      if (!(error instanceof CommandAbandoned)) throw error;
      logger.warn({ commandId: context.commandId, type: command.type }, 'command abandoned between attempts; it will be read again');
      return false;
    }
    const durationMs = performance.now() - started;

    let status: CommandStatus;
    if (outcome.ok) {
      status = 'succeeded';
      const fields = { attempts: outcome.attempts, entity: entityRef(outcome.entity), durationMs };
      await producer.sendBatches([
        { topic: topics.entities, events: [entityUpserted(context, outcome.entity, command.data.connection)] },
        { topic: topics.commandResults, events: [resultEvent(context, status, fields, this.now())] },
      ]);
      logger.info(
        { commandId: context.commandId, type: command.type, status, attempts: outcome.attempts, entity: outcome.entity.key, ms: Math.round(durationMs) },
        'command succeeded',
      );
    } else {
      status = 'failed';
      const error = commandError(outcome.error);
      await producer.send(topics.commandResults, [
        resultEvent(context, status, { attempts: outcome.attempts, error, durationMs }, this.now()),
      ]);
      logger.warn(
        { commandId: context.commandId, type: command.type, status, attempts: outcome.attempts, code: error.code, ms: Math.round(durationMs) },
        `command failed: ${error.message}`,
      );
    }
    metrics.commands.inc({ type: command.type, status });
    metrics.commandDuration.observe({ type: command.type, status }, durationMs / 1000);
    return true;
  }

  private async reject(context: CommandContext, error: AdapterError): Promise<void> {
    await this.deps.producer.send(topics.commandResults, [resultEvent(context, 'rejected', { error: commandError(error) }, this.now())]);
    this.deps.metrics.commands.inc({ type: context.commandType, status: 'rejected' });
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
    });
    const rejection: CommandError = { code: error.code, message: error.message, retriable: false, ...(field === undefined ? {} : { field }) };
    await Promise.all([
      this.deps.producer.send(topics.commandResults, [resultEvent(context, 'rejected', { error: rejection }, this.now())]),
      this.deps.deadLetters.send([{ record, why: { code: error.code, reason: error.message, field } }]),
    ]);
    // Label values stay within the catalog: a malformed record's type is arbitrary text.
    this.deps.metrics.commands.inc({ type: isCommandType(context.commandType) ? context.commandType : 'unknown', status: 'rejected' });
    this.deps.logger.warn(
      { commandId: context.commandId, topic: record.topic, partition: record.partition, offset: record.offset, code: error.code, field },
      `undecodable command rejected and dead-lettered: ${error.message}`,
    );
  }
}

function commandError(error: AdapterError): CommandError {
  return {
    code: error.code,
    message: error.message,
    retriable: error.retriable,
    ...(error.field === undefined ? {} : { field: error.field }),
  };
}
