import { z } from 'zod';
import { envelopeSchema } from './envelope.js';

/**
 * How far a projection has committed: after each batch transaction, the sync worker publishes the partition's new
 * position (the next offset it will apply) on the compacted projection-positions topic. A reader that knows where
 * an event is (topic, partition, offset) knows its effect is visible in Postgres once the position is past it,
 * without reading Postgres (`wait=projected` in the adapter).
 */
export const ProjectionPositionData = z.object({
  /** The projection (`entities`, `command_log`, `api_health`). */
  projection: z.string().min(1).max(100),
  /** The topic's full name, prefix included. */
  topic: z.string().min(1).max(300),
  partition: z.number().int().nonnegative(),
  /** Every record below this offset is applied and committed. */
  nextOffset: z.string().regex(/^\d+$/, 'expected a Kafka offset'),
  /** The Kafka cluster id the position belongs to. */
  cluster: z.string().min(1).max(100),
});
export type ProjectionPositionData = z.infer<typeof ProjectionPositionData>;

export const projectionPositionSchemas = {
  'switchyard.projection.position_committed': envelopeSchema('switchyard.projection.position_committed', ProjectionPositionData),
} as const;
