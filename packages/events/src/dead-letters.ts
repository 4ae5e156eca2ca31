import { z } from 'zod';
import { envelopeSchema } from './envelope.js';

/**
 * A record a consumer could not use, kept whole so nothing is lost: the original bytes (base64), where it was,
 * and why it was refused. Keyed by the original record's key.
 */
export const DeadLetterData = z.object({
  original: z.object({
    topic: z.string(),
    partition: z.number().int().nonnegative(),
    offset: z.string().regex(/^\d+$/),
    timestamp: z.string().nullable(),
    key: z.string().nullable().describe('base64'),
    value: z.string().nullable().describe('base64'),
    headers: z.record(z.string(), z.string().describe('base64')),
  }),
  error: z.object({
    code: z.string().min(1),
    reason: z.string(),
    /** The failing field path when the record decoded but did not match its schema. */
    field: z.string().optional(),
  }),
  consumer: z.object({ service: z.string(), group: z.string() }),
});
export type DeadLetterData = z.infer<typeof DeadLetterData>;

export const deadLetterSchemas = {
  'switchyard.record.dead_lettered': envelopeSchema('switchyard.record.dead_lettered', DeadLetterData),
} as const;
