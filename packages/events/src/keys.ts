import { z } from 'zod';
import { envelopeSchema } from './envelope.js';

/**
 * API keys, as every service knows them: the compacted api-keys topic holds one event per key with the key's
 * whole record (docs/adr/0004-api-keys.md). The record has the key's id and a SHA-256 of the key, never the key.
 * A revoked record stays revoked: a service that has seen `revokedAt` ignores an older record without it.
 */

/** `sy_` and 16 lower-case hex characters: visible, not secret; the first part of every key. */
export const ApiKeyId = z.string().regex(/^sy_[0-9a-f]{16}$/, 'expected a key id such as sy_0123456789abcdef');

/**
 * `<what>[:<detail>]`: `admin`; `commands:send:<type glob>`; `commands:read` (its own commands) and
 * `commands:read:all`; `stream:<type glob>`; `health:read`. A glob is a command or event type in which `*`
 * stands for any run of characters (`github.issue.*`, `*`).
 */
export const ApiKeyScope = z
  .string()
  .regex(
    /^(admin|commands:read|commands:read:all|health:read|commands:send:[a-z0-9_.*]{1,200}|stream:[a-z0-9_.*]{1,200})$/,
    'expected admin, commands:send:<type glob>, commands:read, commands:read:all, stream:<type glob> or health:read',
  );

export const ApiKeyLimits = z.strictObject({
  /** Commands per second the key's bucket refills with. */
  commandsPerSecond: z.number().positive().max(1_000_000),
  /** The bucket's size: how many commands may come at once. */
  burst: z.number().int().positive().max(1_000_000),
});
export type ApiKeyLimits = z.infer<typeof ApiKeyLimits>;

export const ApiKeyData = z.object({
  keyId: ApiKeyId,
  name: z.string().min(1).max(200),
  /** SHA-256 of the whole key string, lower-case hex. */
  hash: z.string().regex(/^[0-9a-f]{64}$/, 'expected a SHA-256 as 64 hex characters'),
  scopes: z.array(ApiKeyScope).min(1).max(100),
  /** Overrides the service's default command budget for this key. */
  limits: ApiKeyLimits.optional(),
  createdAt: z.iso.datetime({ offset: true }),
  /** Who created it: a key id, or `cli` / `local-stack` for keys made from the command line. */
  createdBy: z.string().min(1).max(200),
  revokedAt: z.iso.datetime({ offset: true }).optional(),
  revokedBy: z.string().min(1).max(200).optional(),
});
export type ApiKeyData = z.infer<typeof ApiKeyData>;

export const apiKeySchemas = {
  'switchyard.api_key.upserted': envelopeSchema('switchyard.api_key.upserted', ApiKeyData),
} as const;
