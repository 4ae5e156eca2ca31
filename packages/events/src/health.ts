import { z } from 'zod';
import { envelopeSchema } from './envelope.js';

/**
 * API health as the health monitor sees it, keyed by API id. Emitted when the status changes (and once when a
 * monitor starts), so the compacted topic always holds each API's current health.
 */
export const HealthStatus = z.enum(['up', 'degraded', 'down']);
export type HealthStatus = z.infer<typeof HealthStatus>;

export const ApiHealthData = z.object({
  api: z.string().min(1).max(100),
  status: HealthStatus,
  previous: z.union([HealthStatus, z.literal('unknown')]),
  /** When the API entered this status. */
  since: z.iso.datetime({ offset: true }),
  /** When the probe that decided it ran. */
  checkedAt: z.iso.datetime({ offset: true }),
  latencyMs: z.number().nonnegative().nullable(),
  httpStatus: z.number().int().nullable(),
  /** Why the status is not `up`: `timeout`, `http_503`, `connection_refused`, `slow`, … */
  reason: z.string().nullable(),
  consecutiveFailures: z.number().int().nonnegative(),
});
export type ApiHealthData = z.infer<typeof ApiHealthData>;

export const apiHealthSchemas = {
  'switchyard.api.health_changed': envelopeSchema('switchyard.api.health_changed', ApiHealthData),
} as const;
