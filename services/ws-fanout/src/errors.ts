import { defineErrorCodes, errorClass, type ErrorCodeSpec } from '@switchyard/events';
import { runtimeErrors, type ErrorBody, type RuntimeErrorCode } from '@switchyard/service-runtime';

/**
 * Why a connection ended or was refused, or why a record was skipped. `close` is the WebSocket close code the
 * client sees (`null`: the connection is dropped without a close frame, or the refusal is an HTTP status before the
 * upgrade — `http`). The README's close-code table is checked against this registry by a test.
 */
interface WsErrorSpec extends ErrorCodeSpec {
  readonly close: number | null;
  readonly http?: number;
}

export const wsFanoutErrors = defineErrorCodes('WS', {
  WS_INVALID_JSON: {
    retriable: false,
    close: 1007,
    meaning: 'The client sent a binary frame, a text frame that is not JSON, or text that is not valid UTF-8.',
    fix: 'Send each message as one JSON text frame.',
  },
  WS_INVALID_MESSAGE: {
    retriable: false,
    close: 4400,
    meaning: 'A client message is JSON but not a valid protocol message; the close reason starts with the field.',
    fix: 'Correct the named field (see the protocol section of the README).',
  },
  WS_DUPLICATE_SUBSCRIPTION: {
    retriable: false,
    close: 4409,
    meaning: 'A subscribe used an id that names a subscription already open on this connection.',
    fix: 'Use a new id per subscription, or unsubscribe the old one first.',
  },
  WS_TOO_MANY_SUBSCRIPTIONS: {
    retriable: false,
    close: 4429,
    meaning: 'A subscribe would exceed WS_MAX_SUBSCRIPTIONS on this connection.',
    fix: 'Combine filters (types take patterns, subjects take lists) or open another connection.',
  },
  WS_SCOPE_MISSING: {
    retriable: false,
    close: 4403,
    meaning: "A subscription's `types` has an entry the key may not stream: no `stream:` scope of the key covers it. The close reason names the entry.",
    fix: 'Subscribe only to types within the key\'s `stream:` scopes (a subscription without `types` gets just those), or use a key with a wider scope.',
  },
  WS_KEY_REVOKED: {
    retriable: false,
    close: 4401,
    meaning: 'The key the connection was opened with was revoked; its open connections are closed within a second. The close reason names the key id.',
    fix: 'Reconnect with another key; an admin can create one.',
  },
  WS_SUBPROTOCOL_REQUIRED: {
    retriable: false,
    close: null,
    http: 400,
    meaning: 'The key came as a `switchyard.bearer.<key>` subprotocol without `switchyard.v1` beside it; the bearer entry is never selected, so such a client would fail the handshake.',
    fix: "Offer both: `new WebSocket(url, ['switchyard.v1', 'switchyard.bearer.' + key])`.",
  },
  WS_SLOW_CONSUMER: {
    retriable: true,
    close: 4008,
    meaning: 'The client read too slowly: its unsent frames would exceed WS_MAX_BUFFERED_BYTES.',
    fix: 'Read faster or subscribe to fewer events; reconnect and resync what was missed.',
  },
  WS_HEARTBEAT_TIMEOUT: {
    retriable: true,
    close: null,
    meaning: 'The client did not answer the previous ping within WS_PING_INTERVAL_MS; the TCP connection is dropped.',
    fix: 'Answer pings (browsers and ws do); check for proxies that swallow control frames.',
  },
  WS_TOO_MANY_CONNECTIONS: {
    retriable: true,
    close: 1013,
    meaning: 'The instance already holds WS_MAX_CONNECTIONS connections.',
    fix: 'Retry with backoff, against another instance, or raise the limit.',
  },
  WS_MESSAGE_TOO_BIG: {
    retriable: false,
    close: 1009,
    meaning: 'A client message exceeded WS_MAX_MESSAGE_BYTES.',
    fix: 'Send smaller messages; split large subject lists over several subscriptions.',
  },
  WS_PROTOCOL_ERROR: {
    retriable: false,
    close: 1002,
    meaning: 'The client broke the WebSocket framing rules (unmasked frame, bad opcode, bad close code).',
    fix: 'Use a conforming WebSocket client.',
  },
  WS_SHUTTING_DOWN: {
    retriable: true,
    close: 1001,
    meaning: 'The instance is stopping (deploy, scale-in); new upgrades get HTTP 503.',
    fix: 'Reconnect, with backoff, to another instance.',
  },
  WS_INTERNAL: {
    retriable: true,
    close: 1011,
    meaning: 'An unexpected error while handling a client message; the log has the cause.',
    fix: 'Reconnect; report it if it persists.',
  },
  WS_ORIGIN_FORBIDDEN: {
    retriable: false,
    close: null,
    http: 403,
    meaning: 'The upgrade request came from an Origin not listed in WS_ALLOWED_ORIGINS.',
    fix: 'Add the origin to WS_ALLOWED_ORIGINS, or connect from an allowed page.',
  },
  WS_UPGRADE_REQUIRED: {
    retriable: false,
    close: null,
    http: 426,
    meaning: 'GET /v1/stream was requested without a WebSocket upgrade.',
    fix: 'Connect with a WebSocket client (ws://host:port/v1/stream).',
  },
  WS_UNDECODABLE_RECORD: {
    retriable: false,
    close: null,
    meaning: 'A Kafka record did not decode against the topic catalog; it is skipped (the sync worker dead-letters it).',
    fix: 'Fix the producer; the log line names topic, partition, offset and the failing field.',
  },
} satisfies Record<`WS_${string}`, WsErrorSpec>);
export type WsFanoutErrorCode = keyof typeof wsFanoutErrors;

/** The WebSocket close code for an error code, or `null` when the connection is not closed with a frame. */
export function closeCodeOf(code: WsFanoutErrorCode): number | null {
  return (wsFanoutErrors[code] as WsErrorSpec).close;
}

/**
 * An expected failure of a client or a record. `details.field` names the offending message field for
 * `WS_INVALID_MESSAGE` (e.g. `filter.types[0]`).
 */
/** An HTTP error body in the service's shape for a refusal before (or instead of) the upgrade. */
export function errorBody(code: WsFanoutErrorCode | RuntimeErrorCode, message: string): ErrorBody {
  const spec: ErrorCodeSpec = code in wsFanoutErrors ? wsFanoutErrors[code as WsFanoutErrorCode] : runtimeErrors[code as RuntimeErrorCode];
  return { error: { code, message, retriable: spec.retriable } };
}

export const WsFanoutError = errorClass('WsFanoutError', wsFanoutErrors);
export type WsFanoutError = InstanceType<typeof WsFanoutError>;
