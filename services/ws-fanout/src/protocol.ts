import { issuePath } from '@switchyard/events';
import { z } from 'zod';
import { WsFanoutError, type WsFanoutErrorCode } from './errors.js';
import { typePatternProblem } from './filter.js';

/**
 * The wire protocol on `GET /v1/stream`: one JSON object per text frame, `op` says what it is.
 *
 *   client → server   {"op":"subscribe","id":"s1","filter":{"types":[…],"subjects":[…],"correlationId":"…"}}
 *                     {"op":"unsubscribe","id":"s1"}
 *                     {"op":"ping"}
 *   server → client   {"op":"subscribed","id":"s1"}   {"op":"unsubscribed","id":"s1"}   {"op":"pong"}
 *                     {"op":"event","subscription":"s1","event":<CloudEvent>}
 *                     {"op":"error","code":"WS_…","message":"…","field":"…"}   (just before a close for bad input)
 */
export const STREAM_PATH = '/v1/stream';
/** The id of the subscription a connection gets from `?types=…` / `?subjects=…` / `?correlationId=…`. */
export const DEFAULT_SUBSCRIPTION_ID = 'default';

export const SubscriptionId = z.string().min(1).max(64);

export const TypePattern = z
  .string()
  .min(1)
  .max(200)
  .superRefine((value, context) => {
    const problem = typePatternProblem(value);
    if (problem !== undefined) context.addIssue({ code: 'custom', message: problem });
  });

export const Filter = z.strictObject({
  types: z.array(TypePattern).min(1, 'give at least one type or leave types out').max(100).optional(),
  subjects: z.array(z.string().min(1).max(1000)).min(1, 'give at least one subject or leave subjects out').max(1000).optional(),
  correlationId: z.string().min(1).max(200).optional(),
});
export type Filter = z.infer<typeof Filter>;

export const Subscribe = z.strictObject({ op: z.literal('subscribe'), id: SubscriptionId, filter: Filter.optional() });
export const Unsubscribe = z.strictObject({ op: z.literal('unsubscribe'), id: SubscriptionId });
export const Ping = z.strictObject({ op: z.literal('ping') });

export const ClientMessage = z.discriminatedUnion('op', [Subscribe, Unsubscribe, Ping]);
export type ClientMessage = z.infer<typeof ClientMessage>;

export type Parsed<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly error: WsFanoutError };

function failure(code: WsFanoutErrorCode, message: string, field?: string): { ok: false; error: WsFanoutError } {
  return { ok: false, error: new WsFanoutError(code, message, field === undefined ? {} : { details: { field } }) };
}

function join(prefix: string, field: string): string {
  if (prefix === '') return field;
  if (field === '') return prefix;
  return field.startsWith('[') ? `${prefix}${field}` : `${prefix}.${field}`;
}

/** The first problem as `field` + message; the field is a dotted path (`filter.types[0]`) or `(root)`. */
function describe(error: z.ZodError): { field: string; message: string } {
  const issue = error.issues[0];
  if (issue === undefined) return { field: '(root)', message: 'invalid' };
  const at = issuePath(issue.path);
  if (issue.code === 'unrecognized_keys') return { field: join(at, issue.keys[0] ?? ''), message: 'unknown field' };
  if (issue.code === 'invalid_union' && issue.path.length === 1 && issue.path[0] === 'op') {
    return { field: at, message: 'expected subscribe, unsubscribe or ping' };
  }
  if (at === '' && issue.code === 'invalid_type') return { field: '(root)', message: 'expected a JSON object' };
  return { field: at || '(root)', message: issue.message };
}

/** Validates an already-parsed client message; a failure names the field in its message and `details.field`. */
export function validateClientMessage(json: unknown): Parsed<ClientMessage> {
  const parsed = ClientMessage.safeParse(json);
  if (parsed.success) return { ok: true, value: parsed.data };
  const { field, message } = describe(parsed.error);
  return failure('WS_INVALID_MESSAGE', `${field}: ${message}`, field);
}

/** One frame from the client: JSON text only. */
export function parseClientMessage(data: Buffer, isBinary: boolean): Parsed<ClientMessage> {
  if (isBinary) return failure('WS_INVALID_JSON', 'binary frames are not accepted; send JSON text frames');
  let json: unknown;
  try {
    json = JSON.parse(data.toString('utf8'));
  } catch (cause) {
    return failure('WS_INVALID_JSON', `not JSON: ${(cause as Error).message}`);
  }
  return validateClientMessage(json);
}

const QUERY_LISTS = ['types', 'subjects'] as const;

/**
 * `?types=github.issue.*,switchyard.command.*&subjects=…&correlationId=…` → the filter of the connection's
 * `default` subscription, or `undefined` when none of these parameters is present. Lists are comma-separated and
 * may also be repeated (`?types=a&types=b`). Other parameters are ignored.
 */
export function parseStreamQuery(params: URLSearchParams): Parsed<Filter | undefined> {
  const raw: Record<string, unknown> = {};
  for (const name of QUERY_LISTS) {
    if (!params.has(name)) continue;
    raw[name] = params
      .getAll(name)
      .flatMap((value) => value.split(','))
      .map((value) => value.trim())
      .filter((value) => value !== '');
  }
  const correlationId = params.get('correlationId');
  if (correlationId !== null) raw['correlationId'] = correlationId;
  if (Object.keys(raw).length === 0) return { ok: true, value: undefined };
  const parsed = Filter.safeParse(raw);
  if (parsed.success) return { ok: true, value: parsed.data };
  const { field, message } = describe(parsed.error);
  return failure('WS_INVALID_MESSAGE', `${field}: ${message}`, field);
}

/** RFC 6455 §5.5: a close frame's reason is at most 123 bytes of UTF-8. */
export const MAX_CLOSE_REASON_BYTES = 123;

/** Cuts `reason` to fit a close frame without splitting a character, marking the cut with `…`. */
export function closeReason(reason: string): string {
  if (Buffer.byteLength(reason, 'utf8') <= MAX_CLOSE_REASON_BYTES) return reason;
  const budget = MAX_CLOSE_REASON_BYTES - Buffer.byteLength('…', 'utf8');
  let out = '';
  let bytes = 0;
  for (const char of reason) {
    const size = Buffer.byteLength(char, 'utf8');
    if (bytes + size > budget) break;
    out += char;
    bytes += size;
  }
  return `${out}…`;
}

export const serverMessages = {
  subscribed: (id: string): string => JSON.stringify({ op: 'subscribed', id }),
  unsubscribed: (id: string): string => JSON.stringify({ op: 'unsubscribed', id }),
  pong: (): string => '{"op":"pong"}',
  error: (error: WsFanoutError): string => {
    const { field } = error;
    return JSON.stringify({ op: 'error', code: error.code, message: error.message, ...(field === undefined ? {} : { field }) });
  },
};

/**
 * The `event` frames of one event. The event is serialized once, and only if some subscription wants it; each
 * distinct subscription id then costs one string concatenation, shared by every connection using that id (all
 * `?types=` connections use `default`). The frames are Buffers so `ws` writes them without another copy.
 */
export class EventFrames {
  private readonly event: unknown;
  private json: string | undefined;
  private readonly frames = new Map<string, Buffer>();

  constructor(event: unknown) {
    this.event = event;
  }

  for(subscriptionId: string): Buffer {
    let frame = this.frames.get(subscriptionId);
    if (frame === undefined) {
      this.json ??= JSON.stringify(this.event);
      frame = Buffer.from(`{"op":"event","subscription":${JSON.stringify(subscriptionId)},"event":${this.json}}`, 'utf8');
      this.frames.set(subscriptionId, frame);
    }
    return frame;
  }
}
