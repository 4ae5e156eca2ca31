import { z } from 'zod';
import { envelopeSchema } from './envelope.js';
import { EntityVersion } from './version.js';

/**
 * Command results, keyed by command id (which is also their CloudEvents subject): `accepted` when the handler picks a
 * valid command up, then exactly one of `succeeded` or `failed`; `rejected` (alone) when the command is malformed or
 * of an unknown type. The entity a command touched is in `data.entity`.
 */
export const CommandStatus = z.enum(['accepted', 'succeeded', 'failed', 'rejected']);
export type CommandStatus = z.infer<typeof CommandStatus>;

export const CommandError = z.object({
  code: z.string().min(1),
  message: z.string(),
  retriable: z.boolean(),
  /** For rejections: the path of the offending field, e.g. `data.input.title`. */
  field: z.string().optional(),
});
export type CommandError = z.infer<typeof CommandError>;

/** Where an event is on its topic (within the deployment's prefix). */
export const LogPosition = z.object({
  partition: z.number().int().nonnegative(),
  offset: z.string().regex(/^\d+$/, 'expected a Kafka offset'),
});
export type LogPosition = z.infer<typeof LogPosition>;

export const EntityRef = z.object({
  key: z.string().min(1),
  source: z.string().min(1),
  entityType: z.string().min(1),
  entityId: z.string().min(1),
  version: EntityVersion,
  /** Where the entity event with this state is on the entities topic, so a reader can wait for its projection. */
  position: LogPosition.optional(),
});
export type EntityRef = z.infer<typeof EntityRef>;

const resultData = (status: CommandStatus) =>
  z.object({
    commandId: z.string().min(1),
    /** The command's type as received; may be an unknown type on a rejection. */
    commandType: z.string(),
    status: z.literal(status),
    /** How many attempts the handler made against the external API. */
    attempts: z.number().int().nonnegative().optional(),
    /**
     * On `accepted`: which attempt starts now (1 for the first). A write the provider cannot repeat safely gets an
     * `accepted` before every attempt, so whoever takes the command over knows when the last one began.
     */
    attempt: z.number().int().positive().optional(),
    /** On `succeeded`: the entity was found at the provider (an earlier attempt had carried the command out). */
    foundExisting: z.boolean().optional(),
    /** The entity the command created or changed. */
    entity: EntityRef.optional(),
    error: CommandError.optional(),
    /** Wall-clock time the handler spent, in milliseconds. */
    durationMs: z.number().nonnegative().optional(),
  });

export const commandResultSchemas = {
  'switchyard.command.accepted': envelopeSchema('switchyard.command.accepted', resultData('accepted')),
  'switchyard.command.succeeded': envelopeSchema('switchyard.command.succeeded', resultData('succeeded')),
  'switchyard.command.failed': envelopeSchema('switchyard.command.failed', resultData('failed')),
  'switchyard.command.rejected': envelopeSchema('switchyard.command.rejected', resultData('rejected')),
} as const;

export function commandResultType(status: CommandStatus): keyof typeof commandResultSchemas {
  return `switchyard.command.${status}`;
}
