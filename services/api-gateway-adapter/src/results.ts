import {
  childTraceparent,
  createEvent,
  type CommandError,
  type CommandStatus,
  type EntityRef,
  type TopicEventInput,
  type Topics,
} from '@switchyard/events';
import type { ExecutedEntity } from './executor.js';

export const SOURCE = 'switchyard/api-gateway-adapter';

/** What every event caused by one command repeats from it. */
export interface CommandContext {
  readonly commandId: string;
  /** As received; empty when the record had none. */
  readonly commandType: string;
  readonly correlationId: string;
  /** A child span of the command's trace (a new trace when the command had none), shared by its events. */
  readonly traceparent: string;
}

export function commandContext(command: {
  id: string;
  type: string;
  correlationid?: string | undefined;
  traceparent?: string | undefined;
}): CommandContext {
  return {
    commandId: command.id,
    commandType: command.type,
    correlationId: command.correlationid ?? command.id,
    traceparent: childTraceparent(command.traceparent),
  };
}

type ResultEvent = TopicEventInput<Topics['commandResults']>;
type EntityEvent = TopicEventInput<Topics['entities']>;

export interface ResultFields {
  readonly attempts?: number;
  readonly entity?: EntityRef;
  readonly error?: CommandError;
  readonly durationMs?: number;
}

/** A command result about the command: its subject and key are the command id; caused by the command, in its correlation and trace. */
export function resultEvent(context: CommandContext, status: CommandStatus, fields: ResultFields, time: Date): ResultEvent {
  return createEvent({
    type: `switchyard.command.${status}`,
    source: SOURCE,
    subject: context.commandId,
    time,
    correlationId: context.correlationId,
    causationId: context.commandId,
    traceparent: context.traceparent,
    data: {
      commandId: context.commandId,
      commandType: context.commandType,
      status,
      ...(fields.attempts === undefined ? {} : { attempts: fields.attempts }),
      ...(fields.entity === undefined ? {} : { entity: fields.entity }),
      ...(fields.error === undefined ? {} : { error: fields.error }),
      ...(fields.durationMs === undefined ? {} : { durationMs: Math.round(fields.durationMs * 1000) / 1000 }),
    },
  });
}

/** `github.issue.upserted` with the full state as the command's answer reported it. */
export function entityUpserted(context: CommandContext, entity: ExecutedEntity, connection: string): EntityEvent {
  return createEvent({
    type: 'github.issue.upserted',
    source: SOURCE,
    subject: entity.key,
    time: entity.observedAt,
    correlationId: context.correlationId,
    causationId: context.commandId,
    traceparent: context.traceparent,
    entityVersion: entity.version,
    data: {
      source: entity.source,
      entityType: entity.entityType,
      entityId: entity.entityId,
      version: entity.version,
      origin: { kind: 'command', id: context.commandId, connection },
      state: entity.state,
    },
  });
}

export function entityRef(entity: ExecutedEntity): EntityRef {
  return { key: entity.key, source: entity.source, entityType: entity.entityType, entityId: entity.entityId, version: entity.version };
}
