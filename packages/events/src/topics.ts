import type { z } from 'zod';
import type { Envelope } from './envelope.js';
import { commandKey, commandSchemas } from './commands.js';
import { deadLetterSchemas } from './dead-letters.js';
import { entityEventSchemas, entityKey } from './entities.js';
import { apiHealthSchemas } from './health.js';
import { apiKeySchemas } from './keys.js';
import { projectionPositionSchemas } from './positions.js';
import { commandResultSchemas } from './results.js';

/**
 * The topic catalog: every topic Switchyard uses, how it is keyed and kept, and the event types it carries. Topic
 * names get a deployment prefix (`TOPIC_PREFIX`, default `switchyard.`) so several stacks — or several tests —
 * can share one cluster. docs/architecture.md has the same table with producers and consumers.
 */
export type EventSchemas = Readonly<Record<string, z.ZodType>>;

type EventsIn<S extends EventSchemas> = { [K in keyof S]: z.input<S[K]> }[keyof S];
type EventsOut<S extends EventSchemas> = { [K in keyof S]: z.output<S[K]> }[keyof S];

export interface TopicSpec<S extends EventSchemas = EventSchemas> {
  /** The name after the prefix. */
  readonly name: string;
  readonly partitions: number;
  /** Kafka topic configs applied at creation (and checked on start). */
  readonly config: Readonly<Record<string, string>>;
  /** What the Kafka key is. */
  readonly key: string;
  /** Derives the Kafka key from an event of this topic. */
  readonly keyOf: (event: Envelope) => string;
  readonly schemas: S;
}

const DAY_MS = 24 * 60 * 60 * 1000;

function defineTopic<S extends EventSchemas>(
  spec: Omit<TopicSpec<S>, 'keyOf'> & { keyOf: (event: EventsIn<S>) => string },
): TopicSpec<S> {
  return { ...spec, keyOf: (event) => spec.keyOf(event as EventsIn<S>) };
}

export const topics = {
  commands: defineTopic({
    name: 'commands',
    partitions: 6,
    config: { 'cleanup.policy': 'delete', 'retention.ms': String(7 * DAY_MS) },
    key: "the command's target entity key, or for a create its command id",
    keyOf: (command) => commandKey(command),
    schemas: commandSchemas,
  }),
  commandResults: defineTopic({
    name: 'command-results',
    partitions: 6,
    config: { 'cleanup.policy': 'delete', 'retention.ms': String(7 * DAY_MS) },
    key: 'the command id',
    keyOf: (result) => result.data.commandId,
    schemas: commandResultSchemas,
  }),
  entities: defineTopic({
    name: 'entities',
    partitions: 6,
    // Compacted: the latest event of every entity stays forever, so any service can rebuild current state from
    // offset 0. Deletions are events with a version (not null tombstones) so a late, older upsert can't revive.
    config: { 'cleanup.policy': 'compact', 'min.compaction.lag.ms': String(60 * 60 * 1000) },
    key: 'the entity key <source>:<entityType>:<entityId>',
    keyOf: (event) => entityKey(event.data.source, event.data.entityType, event.data.entityId),
    schemas: entityEventSchemas,
  }),
  apiHealth: defineTopic({
    name: 'api-health',
    partitions: 3,
    config: { 'cleanup.policy': 'compact' },
    key: 'the API id',
    keyOf: (event) => event.data.api,
    schemas: apiHealthSchemas,
  }),
  projectionPositions: defineTopic({
    name: 'projection-positions',
    partitions: 3,
    // Compacted: the latest committed position of every projection's partition stays.
    config: { 'cleanup.policy': 'compact' },
    key: '<projection>/<topic>/<partition>',
    keyOf: (event) => `${event.data.projection}/${event.data.topic}/${event.data.partition}`,
    schemas: projectionPositionSchemas,
  }),
  apiKeys: defineTopic({
    name: 'api-keys',
    partitions: 1,
    // Compacted: the latest record of every key stays forever; every service reads it from offset 0 at start.
    config: { 'cleanup.policy': 'compact' },
    key: 'the key id (sy_<16 hex>)',
    keyOf: (event) => event.data.keyId,
    schemas: apiKeySchemas,
  }),
  deadLetters: defineTopic({
    name: 'dead-letters',
    partitions: 3,
    config: { 'cleanup.policy': 'delete', 'retention.ms': String(30 * DAY_MS) },
    key: "the original record's key (the dead-letter producer sets it from the original bytes)",
    keyOf: (event) => event.subject ?? event.id,
    schemas: deadLetterSchemas,
  }),
} as const;
export type Topics = typeof topics;

/** The event union a topic carries. */
export type TopicEvent<T extends TopicSpec> = EventsOut<T['schemas']>;

/** The input form (before defaults) of the event union a topic carries, for producers. */
export type TopicEventInput<T extends TopicSpec> = EventsIn<T['schemas']>;

export const DEFAULT_TOPIC_PREFIX = 'switchyard.';

export function topicName(topic: TopicSpec, prefix: string): string {
  return `${prefix}${topic.name}`;
}
