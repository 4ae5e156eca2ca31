import { CommandError, CommandStatus, EntityRef } from '@switchyard/events';
import { z } from 'zod';
import { ErrorBody } from './errors.js';

/**
 * The command API of the api-gateway-adapter, as a client sees it:
 *
 * - `POST /v1/commands` — body `CommandSubmission`; `Idempotency-Key` header (or `idempotencyKey` in the body);
 *   `?wait=result|projected&timeout=10s`. 202 `CommandReceipt` (with `Location: /v1/commands/<id>`), or 200
 *   `CommandStatusView` when the wait ended with the command finished.
 * - `POST /v1/commands:batch` — body `BatchSubmission`; 200 `BatchAnswer`, one item per command in order.
 * - `GET /v1/commands/:id` — 200 `CommandStatusView`, 404 `AGW_COMMAND_NOT_FOUND` (also for a command another
 *   key sent, unless the caller's key has `commands:read:all`).
 * Every route takes `Authorization: Bearer <key>` (docs/security.md).
 *
 * Every error answer is an `ErrorBody`.
 */

/** The header that names a command across retries; a repeat within the window answers the same receipt. */
export const IDEMPOTENCY_KEY_HEADER = 'idempotency-key';
/** Longest idempotency key (Stripe's limit, so a key can be passed on to it). */
export const MAX_IDEMPOTENCY_KEY_LENGTH = 255;
/** Most commands in one `POST /v1/commands:batch`. */
export const MAX_BATCH_COMMANDS = 100;
/** Longest `timeout` a `wait` may ask for. */
export const MAX_WAIT_MS = 60000;

/** The fields of a submission; `input` is checked against the command type's schema in the command catalog. */
export const SUBMISSION_FIELDS = ['type', 'input', 'connection', 'idempotencyKey', 'correlationId'] as const;

export interface CommandSubmission {
  readonly type: string;
  readonly input: unknown;
  /** The configured connection (credentials and base URL); default: the provider, the type's first word. */
  readonly connection?: string;
  /** Names the command across retries, like the Idempotency-Key header (the two must agree when both are given). */
  readonly idempotencyKey?: string;
  /** Shared by everything the command causes; default: the command id. */
  readonly correlationId?: string;
}

export const CommandReceipt = z.object({
  commandId: z.string().min(1),
  correlationId: z.string().min(1),
  type: z.string().min(1),
  /** The entity key the command acts on. */
  target: z.string().min(1),
});
export type CommandReceipt = z.infer<typeof CommandReceipt>;

/** `submitted` until the adapter picks the command up, then the latest command result's status. */
export const CommandState = z.enum(['submitted', ...CommandStatus.options]);
export type CommandState = z.infer<typeof CommandState>;

export const CommandTimelineEntry = z.object({
  status: CommandState,
  at: z.iso.datetime({ offset: true }),
  /** On `accepted`: which attempt at the provider started. */
  attempt: z.number().int().positive().optional(),
  errorCode: z.string().optional(),
});
export type CommandTimelineEntry = z.infer<typeof CommandTimelineEntry>;

export const CommandStatusView = CommandReceipt.extend({
  status: CommandState,
  /** True once the status is succeeded, failed or rejected: nothing more will happen. */
  finished: z.boolean(),
  submittedAt: z.iso.datetime({ offset: true }).optional(),
  updatedAt: z.iso.datetime({ offset: true }),
  timeline: z.array(CommandTimelineEntry),
  /** Who sent it: the id of the API key (CloudEvents `authid`); absent for commands produced straight to Kafka. */
  submittedBy: z.string().optional(),
  /** Attempts made at the provider. */
  attempts: z.number().int().nonnegative().optional(),
  /** The entity the command created or changed, at the version it left behind. */
  entity: EntityRef.optional(),
  /** The entity was found at the provider after an unclear answer: an earlier attempt had carried the command out. */
  foundExisting: z.boolean().optional(),
  error: CommandError.optional(),
  /** With `wait=projected`: whether the entity's new version was committed to Postgres when the answer was sent. */
  projected: z.boolean().optional(),
});
export type CommandStatusView = z.infer<typeof CommandStatusView>;

export interface BatchSubmission {
  readonly commands: readonly CommandSubmission[];
}

export const BatchItemAnswer = z.discriminatedUnion('ok', [
  z.object({ ok: z.literal(true), status: z.literal(202), receipt: CommandReceipt }),
  z.object({ ok: z.literal(false), status: z.number().int().min(400).max(599), error: ErrorBody.shape.error }),
]);
export type BatchItemAnswer = z.infer<typeof BatchItemAnswer>;

export const BatchAnswer = z.object({ results: z.array(BatchItemAnswer) });
export type BatchAnswer = z.infer<typeof BatchAnswer>;

/** What `POST /v1/commands?wait=…` holds the answer for. */
export const WaitFor = z.enum(['result', 'projected']);
export type WaitFor = z.infer<typeof WaitFor>;

/** `10s`, `500ms`, `1m` or a plain number of milliseconds → milliseconds; undefined when malformed. */
export function parseDuration(text: string): number | undefined {
  const match = /^(\d{1,6})(ms|s|m)?$/.exec(text.trim());
  if (!match) return undefined;
  const value = Number(match[1]);
  const unit = match[2] ?? 'ms';
  return unit === 'm' ? value * 60000 : unit === 's' ? value * 1000 : value;
}
