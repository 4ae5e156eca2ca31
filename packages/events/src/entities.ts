import { z } from 'zod';
import { envelopeSchema } from './envelope.js';
import {
  EntityVersion,
  entityVersion,
  microsFromEpochSeconds,
  microsFromEpochSecondsString,
  microsFromIso,
  type Micros,
} from './version.js';

/**
 * Entity-state events: `<source>.<entityType>.upserted | deleted`, each carrying the entity's full state (event-
 * carried state transfer), its version and where the state came from. Kafka key and CloudEvents subject are the
 * entity key `<source>:<entityType>:<entityId>`, so each entity's events stay in order on one partition.
 */

export function entityKey(source: string, entityType: string, entityId: string): string {
  return `${source}:${entityType}:${entityId}`;
}

export const EntityOrigin = z.object({
  /** How the state reached us: a provider webhook, our own poll, or the response to a command we executed. */
  kind: z.enum(['webhook', 'poll', 'command']),
  /** Webhook delivery id, poll run id or command id. */
  id: z.string().min(1),
  /** The configured connection (credentials + base URL) the state came through. */
  connection: z.string().min(1),
});
export type EntityOrigin = z.infer<typeof EntityOrigin>;

const IsoTimestamp = z.iso.datetime({ offset: true });
const GithubUser = z.looseObject({ login: z.string(), id: z.number().int() });
const GithubLabel = z.looseObject({ name: z.string() });

/** A GitHub issue as the REST API returns it (unknown fields are kept). */
export const GithubIssue = z.looseObject({
  id: z.number().int(),
  node_id: z.string().optional(),
  number: z.number().int().positive(),
  title: z.string(),
  body: z.string().nullable().optional(),
  state: z.enum(['open', 'closed']),
  state_reason: z.string().nullable().optional(),
  labels: z.array(GithubLabel).default([]),
  assignees: z.array(GithubUser).optional(),
  user: GithubUser.nullable().optional(),
  comments: z.number().int().optional(),
  html_url: z.string().optional(),
  repository_url: z.string().optional(),
  created_at: IsoTimestamp,
  updated_at: IsoTimestamp,
  closed_at: IsoTimestamp.nullable().optional(),
});
export type GithubIssue = z.infer<typeof GithubIssue>;

const StripeMetadata = z.record(z.string(), z.string());

/** A Stripe customer object (https://docs.stripe.com/api/customers/object). */
export const StripeCustomer = z.looseObject({
  id: z.string().startsWith('cus_'),
  object: z.literal('customer'),
  created: z.number().int(),
  email: z.string().nullable().optional(),
  name: z.string().nullable().optional(),
  description: z.string().nullable().optional(),
  livemode: z.boolean().optional(),
  metadata: StripeMetadata.optional(),
});
export type StripeCustomer = z.infer<typeof StripeCustomer>;

/** A Stripe PaymentIntent (https://docs.stripe.com/api/payment_intents/object). */
export const StripePaymentIntent = z.looseObject({
  id: z.string().startsWith('pi_'),
  object: z.literal('payment_intent'),
  amount: z.number().int().nonnegative(),
  currency: z.string().length(3),
  status: z.enum([
    'requires_payment_method',
    'requires_confirmation',
    'requires_action',
    'processing',
    'requires_capture',
    'canceled',
    'succeeded',
  ]),
  customer: z.string().nullable().optional(),
  created: z.number().int(),
  livemode: z.boolean().optional(),
  metadata: StripeMetadata.optional(),
});
export type StripePaymentIntent = z.infer<typeof StripePaymentIntent>;

/** A Slack message; identified by channel + ts. */
export const SlackMessage = z.looseObject({
  channel: z.string().min(1),
  ts: z.string().regex(/^\d+\.\d+$/),
  text: z.string().optional(),
  user: z.string().optional(),
  thread_ts: z.string().optional(),
  subtype: z.string().optional(),
  edited: z.looseObject({ user: z.string().optional(), ts: z.string() }).optional(),
});
export type SlackMessage = z.infer<typeof SlackMessage>;

/**
 * How each source's versions are made. `observedAt` is when we received the state (webhook arrival, poll
 * response, command response); it is always the tiebreak.
 */
export const sourceVersions = {
  /** GitHub says when an issue last changed: `updated_at` (second precision). */
  githubIssue: (issue: Pick<GithubIssue, 'updated_at'>, observedAt: Micros) =>
    entityVersion(microsFromIso(issue.updated_at), observedAt),
  /**
   * Stripe objects carry no `updated` time. A webhook or `/v1/events` entry says when the change happened
   * (`event.created`); a direct API response is true as of the moment we observed it.
   */
  stripe: (eventCreated: number | undefined, observedAt: Micros) =>
    entityVersion(eventCreated === undefined ? observedAt : microsFromEpochSeconds(eventCreated), observedAt),
  /** A Slack message changes at `edited.ts` (or was born at `ts`). */
  slackMessage: (message: Pick<SlackMessage, 'ts' | 'edited'>, observedAt: Micros) =>
    entityVersion(microsFromEpochSecondsString(message.edited?.ts ?? message.ts), observedAt),
  /**
   * A deletion is true from the moment it is reported: later-arriving states that began before it are older and
   * cannot undo it.
   */
  deletion: (deletedAt: Micros, observedAt: Micros) => entityVersion(deletedAt, observedAt),
} as const;

interface EntitySpec<S extends string, T extends string, State extends z.ZodType> {
  readonly source: S;
  readonly entityType: T;
  readonly state: State;
  /** How people name this entity in SQL (the typed view) and docs. */
  readonly description: string;
}

function defineEntity<const S extends string, const T extends string, State extends z.ZodType>(
  spec: EntitySpec<S, T, State>,
): EntitySpec<S, T, State> {
  return spec;
}

/** Every entity type connectors produce; `entityEventSchemas` below gives each its two event types. */
export const entityCatalog = {
  'github.issue': defineEntity({
    source: 'github',
    entityType: 'issue',
    state: GithubIssue,
    description: 'GitHub issues; entity id `<owner>/<repo>#<number>`',
  }),
  'stripe.customer': defineEntity({
    source: 'stripe',
    entityType: 'customer',
    state: StripeCustomer,
    description: 'Stripe customers; entity id is the `cus_…` id',
  }),
  'stripe.payment_intent': defineEntity({
    source: 'stripe',
    entityType: 'payment_intent',
    state: StripePaymentIntent,
    description: 'Stripe PaymentIntents; entity id is the `pi_…` id',
  }),
  'slack.message': defineEntity({
    source: 'slack',
    entityType: 'message',
    state: SlackMessage,
    description: 'Slack messages; entity id `<channel>/<ts>`',
  }),
} as const;
export type EntityCatalog = typeof entityCatalog;
export type EntityName = keyof EntityCatalog;

function entityEvents<const N extends EntityName>(name: N) {
  const spec: EntityCatalog[N] = entityCatalog[name];
  const common = {
    source: z.literal(spec.source as EntityCatalog[N]['source']),
    entityType: z.literal(spec.entityType as EntityCatalog[N]['entityType']),
    entityId: z.string().min(1).max(500),
    version: EntityVersion,
    origin: EntityOrigin,
  };
  const state = spec.state as EntityCatalog[N]['state'];
  const upserted = envelopeSchema(`${name}.upserted`, z.object({ ...common, state }));
  // A deletion carries the last state we knew, when we knew one.
  const deleted = envelopeSchema(`${name}.deleted`, z.object({ ...common, state: state.nullable() }));
  return { [`${name}.upserted`]: upserted, [`${name}.deleted`]: deleted } as Record<`${N}.upserted`, typeof upserted> &
    Record<`${N}.deleted`, typeof deleted>;
}

/** Event type → envelope schema: the two event types of every entity type in the catalog. */
export const entityEventSchemas = {
  ...entityEvents('github.issue'),
  ...entityEvents('stripe.customer'),
  ...entityEvents('stripe.payment_intent'),
  ...entityEvents('slack.message'),
} as const satisfies Record<`${EntityName}.${'upserted' | 'deleted'}`, unknown>;

/** The fields every entity event shares, whatever its type: what projections need. */
export interface EntityEventData {
  readonly source: string;
  readonly entityType: string;
  readonly entityId: string;
  readonly version: EntityVersion;
  readonly origin: EntityOrigin;
  readonly state: unknown;
}

export type EntityChange = 'upserted' | 'deleted';

/** Splits `github.issue.upserted` into its entity name and change. */
export function parseEntityEventType(type: string): { entity: string; change: EntityChange } | undefined {
  const dot = type.lastIndexOf('.');
  const change = type.slice(dot + 1);
  if (dot < 0 || (change !== 'upserted' && change !== 'deleted')) return undefined;
  return { entity: type.slice(0, dot), change };
}
