/**
 * Error codes are a closed, prefixed union per package or service. Each code says whether retrying can help;
 * callers decide retry versus dead-letter from `retriable`, never from message text. Every code has a row in
 * docs/errors.md (a test keeps the two in sync).
 */
export interface ErrorCodeSpec {
  /** Whether the same operation may succeed if tried again later. */
  readonly retriable: boolean;
  /** What it means, for docs/errors.md. */
  readonly meaning: string;
  /** What to do about it, for docs/errors.md. */
  readonly fix: string;
  /** The HTTP status of an answer carrying this code, where the default rule (service-runtime's http.ts) does not fit. */
  readonly http?: number;
}

export type ErrorRegistry<C extends string = string> = Readonly<Record<C, ErrorCodeSpec>>;

/** A registry whose codes all start with `prefix` (checked at definition time). */
export function defineErrorCodes<const P extends string, const R extends Record<`${P}_${string}`, ErrorCodeSpec>>(
  prefix: P,
  registry: R,
): R {
  for (const code of Object.keys(registry)) {
    if (!code.startsWith(`${prefix}_`)) throw new Error(`error code ${code} does not start with ${prefix}_`);
  }
  return registry;
}

/**
 * The one error class for expected failures. `details` carries typed context (a field path, a topic) and must never
 * hold secrets: it ends up in logs, command results and dead letters.
 */
export class SwitchyardError<C extends string = string> extends Error {
  readonly code: C;
  readonly retriable: boolean;
  readonly details: Readonly<Record<string, unknown>>;
  /** The HTTP status the registry assigns the code, if it assigns one. */
  readonly httpStatus: number | undefined;

  constructor(
    registry: ErrorRegistry<C>,
    code: C,
    message: string,
    options: ErrorOptions = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'SwitchyardError';
    this.code = code;
    this.retriable = options.retriable ?? registry[code].retriable;
    this.details = options.details ?? {};
    this.httpStatus = registry[code].http;
  }

  /** The offending field's path, when the error is about one (`input.title`, `data.version`). */
  get field(): string | undefined {
    const field = this.details['field'];
    return typeof field === 'string' && field !== '' ? field : undefined;
  }

  toJSON(): { code: C; message: string; retriable: boolean; details: Readonly<Record<string, unknown>> } {
    return { code: this.code, message: this.message, retriable: this.retriable, details: this.details };
  }
}

export function isSwitchyardError(error: unknown): error is SwitchyardError {
  return error instanceof SwitchyardError;
}

export interface ErrorOptions {
  details?: Record<string, unknown>;
  cause?: unknown;
  /** Overrides the registry's flag for this occurrence. */
  retriable?: boolean;
}

/**
 * The error class of one registry: `export const SyncError = errorClass('SyncError', syncErrors)` gives
 * `new SyncError('SYNC_…', message)` with the code checked against the registry, and `instanceof SyncError`.
 */
export interface ErrorClass<C extends string> {
  new (code: C, message: string, options?: ErrorOptions): SwitchyardError<C>;
  readonly prototype: SwitchyardError<C>;
}

export function errorClass<C extends string>(name: string, registry: ErrorRegistry<C>): ErrorClass<C> {
  const bound = class extends SwitchyardError<C> {
    constructor(code: C, message: string, options?: ErrorOptions) {
      super(registry, code, message, options);
      this.name = name;
    }
  };
  Object.defineProperty(bound, 'name', { value: name });
  return bound;
}

export const eventErrors = defineErrorCodes('EVT', {
  EVT_EMPTY_VALUE: {
    retriable: false,
    meaning: 'A Kafka record had no value (or a Kafka tombstone arrived where an event was expected).',
    fix: 'Produce a CloudEvents JSON value; deletes are `*.deleted` events, not null values.',
  },
  EVT_NOT_JSON: {
    retriable: false,
    meaning: 'A record value is not valid UTF-8 JSON.',
    fix: 'Produce the structured CloudEvents JSON form (`content-type: application/cloudevents+json`).',
  },
  EVT_INVALID_ENVELOPE: {
    retriable: false,
    meaning: 'The CloudEvents attributes are missing or malformed (id, source, type, time, specversion, …).',
    fix: 'Build events with `createEvent` from @switchyard/events or follow docs/architecture.md#envelope.',
  },
  EVT_UNKNOWN_TYPE: {
    retriable: false,
    meaning: 'The event type is not one the topic carries according to the topic catalog.',
    fix: 'Check the type against the catalog in packages/events/src/topics.ts.',
  },
  EVT_INVALID_DATA: {
    retriable: false,
    meaning: "The event's `data` does not match the schema registered for its type.",
    fix: 'The error details name the field path; fix the producer.',
  },
  EVT_INVALID_VERSION: {
    retriable: false,
    meaning: 'An entity version string is not in the `<ISO-8601 µs UTC>/<16-digit tiebreak>` form.',
    fix: 'Build versions with `entityVersion()` from @switchyard/events.',
  },
});
export type EventErrorCode = keyof typeof eventErrors;

export const EventError = errorClass('EventError', eventErrors);
export type EventError = InstanceType<typeof EventError>;
