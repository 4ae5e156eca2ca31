import type { z } from 'zod';
import type { Envelope } from './envelope.js';
import { EventError } from './errors.js';
import type { TopicEvent, TopicSpec } from './topics.js';

export type DecodeResult<E> = { readonly ok: true; readonly event: E } | { readonly ok: false; readonly error: EventError };

export const CONTENT_TYPE_HEADER = 'content-type';

export function encodeEvent(event: Envelope): Buffer {
  return Buffer.from(JSON.stringify(event), 'utf8');
}

/** `data.state.updated_at` for an issue path `["data","state","updated_at"]`. */
export function issuePath(path: readonly PropertyKey[]): string {
  return path.map((part) => (typeof part === 'number' ? `[${part}]` : String(part))).join('.').replace(/\.\[/g, '[');
}

function firstIssue(error: z.ZodError): { field: string; message: string } {
  const issue = error.issues[0];
  return { field: issue ? issuePath(issue.path) : '', message: issue?.message ?? 'invalid' };
}

/**
 * Validates an already-parsed value against the topic's catalog. The error says which rule broke and, for schema
 * failures, the field path.
 */
export function validateEvent<T extends TopicSpec>(topic: T, value: unknown): DecodeResult<TopicEvent<T>> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return { ok: false, error: new EventError('EVT_INVALID_ENVELOPE', 'the event is not a JSON object') };
  }
  const type = (value as { type?: unknown }).type;
  if (typeof type !== 'string') {
    return {
      ok: false,
      error: new EventError('EVT_INVALID_ENVELOPE', 'type: missing or not a string', { details: { field: 'type' } }),
    };
  }
  const schema = Object.hasOwn(topic.schemas, type) ? topic.schemas[type] : undefined;
  if (schema === undefined) {
    return {
      ok: false,
      error: new EventError('EVT_UNKNOWN_TYPE', `type: ${type} is not carried by topic ${topic.name}`, {
        details: { field: 'type', type },
      }),
    };
  }
  const parsed = schema.safeParse(value);
  if (parsed.success) return { ok: true, event: parsed.data as TopicEvent<T> };
  const { field, message } = firstIssue(parsed.error);
  const code = field === 'data' || field.startsWith('data.') || field.startsWith('data[') ? 'EVT_INVALID_DATA' : 'EVT_INVALID_ENVELOPE';
  return { ok: false, error: new EventError(code, `${field || '(root)'}: ${message}`, { details: { field, type } }) };
}

/**
 * Decodes a Kafka record value (structured-mode CloudEvent JSON) and validates it against the topic's catalog. The
 * value may be given as the record's bytes or as their UTF-8 text, for a caller that needs the text too.
 */
export function decodeEvent<T extends TopicSpec>(topic: T, value: Buffer | string | null | undefined): DecodeResult<TopicEvent<T>> {
  if (value === null || value === undefined || value.length === 0) {
    return { ok: false, error: new EventError('EVT_EMPTY_VALUE', 'the record has no value') };
  }
  let json: unknown;
  try {
    json = JSON.parse(typeof value === 'string' ? value : value.toString('utf8'));
  } catch (cause) {
    return {
      ok: false,
      error: new EventError('EVT_NOT_JSON', `the value is not JSON: ${(cause as Error).message}`, { cause }),
    };
  }
  return validateEvent(topic, json);
}
