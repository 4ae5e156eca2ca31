import { z } from 'zod';
import { isTraceparent, newId } from './ids.js';
import { EntityVersion } from './version.js';

/**
 * Every record on a Switchyard topic is a CloudEvents 1.0 event in structured JSON form: the attributes and `data`
 * in one JSON object as the Kafka value, `content-type: application/cloudevents+json` as a header. Our extension
 * attributes (lower-case, as the spec requires):
 *   - `correlationid`  — shared by everything caused by one request; commands start it, results and entity
 *                        events repeat it.
 *   - `causationid`    — the id of the event or command that directly caused this one.
 *   - `entityversion`  — on entity events, the entity's version (see version.ts).
 *   - `traceparent`    — W3C Trace Context of the span that produced the event.
 *   - `authtype`, `authid` — CloudEvents Auth Context: who asked for it. A command taken over HTTP carries
 *                        `api_key` and the key's id (never the key); its results and entity events repeat both.
 */
export const CLOUDEVENTS_CONTENT_TYPE = 'application/cloudevents+json; charset=utf-8';

/** CloudEvents Auth Context `authtype` values (cloudevents/extensions/authcontext.md). */
export const AUTH_TYPES = ['app_user', 'user', 'service_account', 'api_key', 'system', 'unauthenticated', 'unknown'] as const;
export type AuthType = (typeof AUTH_TYPES)[number];

/** Who an event's occurrence is attributed to: the principal's kind and its id (an API key's id, never the key). */
export interface AuthContext {
  readonly type: AuthType;
  readonly id?: string | undefined;
}

/** The Auth Context of an envelope, when it has one. */
export function authContextOf(event: { readonly authtype?: string | undefined; readonly authid?: string | undefined }): AuthContext | undefined {
  if (event.authtype === undefined) return undefined;
  return { type: event.authtype as AuthType, ...(event.authid === undefined ? {} : { id: event.authid }) };
}

export const EventType = z
  .string()
  .regex(/^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$/, 'expected dot-separated lower-case words, e.g. github.issue.upserted');

export const EnvelopeAttributes = z.object({
  specversion: z.literal('1.0'),
  id: z.string().min(1).max(200),
  source: z.string().min(1).max(500),
  type: EventType,
  subject: z.string().min(1).max(1000).optional(),
  time: z.iso.datetime({ offset: true }),
  datacontenttype: z.literal('application/json'),
  correlationid: z.string().min(1).max(200),
  causationid: z.string().min(1).max(200).optional(),
  entityversion: EntityVersion.optional(),
  traceparent: z.string().refine(isTraceparent, 'expected a W3C traceparent').optional(),
  authtype: z.enum(AUTH_TYPES).optional(),
  authid: z.string().min(1).max(200).optional(),
});
export type EnvelopeAttributes = z.infer<typeof EnvelopeAttributes>;

export type Envelope<T extends string = string, D = unknown> = Omit<EnvelopeAttributes, 'type' | 'entityversion' | 'authtype'> & {
  readonly authtype?: AuthType | undefined;
  readonly type: T;
  /** An entity version string (see version.ts); producers may hand in a plain string, the schema checks it. */
  readonly entityversion?: string | undefined;
  readonly data: D;
};

/** The schema of one event type: the envelope with `type` fixed and `data` validated by `data`. */
export function envelopeSchema<const T extends string, D extends z.ZodType>(type: T, data: D) {
  return EnvelopeAttributes.extend({ type: z.literal(type), data });
}

export interface CreateEventInput<T extends string, D> {
  type: T;
  source: string;
  data: D;
  subject?: string | undefined;
  id?: string | undefined;
  time?: Date | undefined;
  correlationId?: string | undefined;
  causationId?: string | undefined;
  entityVersion?: string | undefined;
  traceparent?: string | undefined;
  auth?: AuthContext | undefined;
}

/**
 * Builds an envelope. The id defaults to a new UUIDv7 and the correlation id to the event's own id (a new
 * conversation). Optional attributes are left out rather than set to undefined so the JSON stays minimal.
 */
export function createEvent<const T extends string, D>(input: CreateEventInput<T, D>): Envelope<T, D> {
  const id = input.id ?? newId();
  const event: Record<string, unknown> = {
    specversion: '1.0',
    id,
    source: input.source,
    type: input.type,
    time: (input.time ?? new Date()).toISOString(),
    datacontenttype: 'application/json',
    correlationid: input.correlationId ?? id,
  };
  if (input.subject !== undefined) event['subject'] = input.subject;
  if (input.causationId !== undefined) event['causationid'] = input.causationId;
  if (input.entityVersion !== undefined) event['entityversion'] = input.entityVersion;
  if (input.traceparent !== undefined) event['traceparent'] = input.traceparent;
  if (input.auth !== undefined) {
    event['authtype'] = input.auth.type;
    if (input.auth.id !== undefined) event['authid'] = input.auth.id;
  }
  event['data'] = input.data;
  return event as Envelope<T, D>;
}
