import {
  authContextOf,
  childTraceparent,
  createEvent,
  type AuthContext,
  entityKey,
  type LogPosition,
  type CommandError,
  type CommandStatus,
  type EntityRef,
  type TopicEventInput,
  type Topics,
} from '@switchyard/events';
import type { EntityState } from '@switchyard/connectors';

export const SOURCE = 'switchyard/api-gateway-adapter';

/** What every event caused by one command repeats from it. */
export interface CommandContext {
  readonly commandId: string;
  /** As received; empty when the record had none. */
  readonly commandType: string;
  readonly correlationId: string;
  /** A child span of the command's trace (a new trace when the command had none), shared by its events. */
  readonly traceparent: string;
  /** Who sent the command (CloudEvents Auth Context), repeated on every event it causes. */
  readonly auth: AuthContext | undefined;
}

export function commandContext(command: {
  id: string;
  type: string;
  correlationid?: string | undefined;
  traceparent?: string | undefined;
  authtype?: string | undefined;
  authid?: string | undefined;
}): CommandContext {
  return {
    commandId: command.id,
    commandType: command.type,
    correlationId: command.correlationid ?? command.id,
    traceparent: childTraceparent(command.traceparent),
    auth: authContextOf(command),
  };
}

type ResultEvent = TopicEventInput<Topics['commandResults']>;
type EntityEvent = TopicEventInput<Topics['entities']>;

export interface ResultFields {
  readonly attempts?: number;
  readonly attempt?: number;
  readonly entity?: EntityRef;
  readonly foundExisting?: boolean;
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
    auth: context.auth,
    data: {
      commandId: context.commandId,
      commandType: context.commandType,
      status,
      ...(fields.attempts === undefined ? {} : { attempts: fields.attempts }),
      ...(fields.attempt === undefined ? {} : { attempt: fields.attempt }),
      ...(fields.entity === undefined ? {} : { entity: fields.entity }),
      ...(fields.foundExisting === undefined ? {} : { foundExisting: fields.foundExisting }),
      ...(fields.error === undefined ? {} : { error: fields.error }),
      ...(fields.durationMs === undefined ? {} : { durationMs: Math.round(fields.durationMs * 1000) / 1000 }),
    },
  });
}

/** The entity's source and type from its catalog name: `github.issue` → github, issue. */
function entityParts(entity: EntityState): { source: string; entityType: string } {
  const dot = entity.entity.indexOf('.');
  return { source: entity.entity.slice(0, dot), entityType: entity.entity.slice(dot + 1) };
}

/** `<entity>.upserted` with the entity's full state as the provider reported it in answer to the command. */
export function entityUpserted(context: CommandContext, entity: EntityState, connection: string, observedAt: Date): EntityEvent {
  const { source, entityType } = entityParts(entity);
  return createEvent({
    type: `${entity.entity}.upserted`,
    source: SOURCE,
    subject: entityKey(source, entityType, entity.entityId),
    time: observedAt,
    correlationId: context.correlationId,
    causationId: context.commandId,
    traceparent: context.traceparent,
    auth: context.auth,
    entityVersion: entity.version,
    data: {
      source,
      entityType,
      entityId: entity.entityId,
      version: entity.version,
      origin: { kind: 'command', id: context.commandId, connection },
      state: entity.state,
    },
  }) as EntityEvent;
}

/** The result's reference to the entity, with where its event landed on the entities topic. */
export function entityRef(entity: EntityState, position: LogPosition | undefined): EntityRef {
  const { source, entityType } = entityParts(entity);
  return {
    key: entityKey(source, entityType, entity.entityId),
    source,
    entityType,
    entityId: entity.entityId,
    version: entity.version,
    ...(position === undefined ? {} : { position }),
  };
}
