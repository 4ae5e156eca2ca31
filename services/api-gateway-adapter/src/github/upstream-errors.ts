import { BrokenCircuitError, TaskCancelledError } from 'cockatiel';
import { errors as undiciErrors } from 'undici';
import { AdapterError, type AdapterErrorCode } from '../errors.js';

/**
 * What one attempt against GitHub came to when it was not a success, and what to do next. Pure: built from the
 * status, headers and body of a response (or from the error of a request that got none), so the decisions are
 * unit-tested without a server.
 */
export class UpstreamError extends AdapterError {
  /** The HTTP status, when an answer arrived. */
  readonly status: number | undefined;
  /** Whether another attempt may get a different answer (the command's attempts and delay cap still apply). */
  readonly retry: boolean;
  /** The least time the provider asked us to wait (retry-after, x-ratelimit-reset, secondary-limit minimum). */
  readonly retryAfterMs: number | undefined;
  /** Whether it says something about the upstream's health (5xx, network, timeout), for the circuit breaker. */
  readonly circuitFailure: boolean;

  constructor(
    code: AdapterErrorCode,
    message: string,
    options: {
      status?: number | undefined;
      retry: boolean;
      retryAfterMs?: number | undefined;
      circuitFailure: boolean;
      field?: string | undefined;
      cause?: unknown;
    },
  ) {
    super(code, message, {
      details: {
        ...(options.status === undefined ? {} : { status: options.status }),
        ...(options.field === undefined ? {} : { field: options.field }),
      },
      cause: options.cause,
    });
    this.name = 'UpstreamError';
    this.status = options.status;
    this.retry = options.retry;
    this.retryAfterMs = options.retryAfterMs;
    this.circuitFailure = options.circuitFailure;
  }
}

export type ResponseHeaders = Readonly<Record<string, string | string[] | undefined>>;

interface GithubErrorBody {
  message?: unknown;
  errors?: unknown;
}

/** GitHub asks for at least a minute's wait after a secondary rate limit that gives no retry-after. */
export const SECONDARY_LIMIT_MIN_WAIT_MS = 60000;

function header(headers: ResponseHeaders, name: string): string | undefined {
  const value = headers[name];
  return Array.isArray(value) ? value[0] : value;
}

function githubMessage(body: unknown): string {
  const message = (body as GithubErrorBody | undefined)?.message;
  return typeof message === 'string' ? message.slice(0, 300) : '';
}

/** `retry-after` is seconds or an HTTP date (RFC 9110 §10.2.3). */
export function retryAfterMs(headers: ResponseHeaders, nowMs: number): number | undefined {
  const value = header(headers, 'retry-after');
  if (value === undefined || value.trim() === '') return undefined;
  if (/^\d+$/.test(value.trim())) return Number(value.trim()) * 1000;
  const date = Date.parse(value);
  return Number.isNaN(date) ? undefined : Math.max(0, date - nowMs);
}

/**
 * How long a rate-limited answer asks us to wait, or undefined when the answer is not a rate limit. Following
 * https://docs.github.com/rest/using-the-rest-api/troubleshooting-the-rest-api#rate-limit-errors: retry-after
 * when present; else, with x-ratelimit-remaining 0, until x-ratelimit-reset (epoch seconds, plus a second for
 * its truncation); else, for a secondary limit, at least a minute.
 */
export function rateLimitWaitMs(status: number, headers: ResponseHeaders, body: unknown, nowMs: number): number | undefined {
  if (status !== 403 && status !== 429) return undefined;
  const after = retryAfterMs(headers, nowMs);
  if (after !== undefined) return after;
  if (header(headers, 'x-ratelimit-remaining') === '0') {
    const reset = Number(header(headers, 'x-ratelimit-reset'));
    return Number.isFinite(reset) ? Math.max(0, reset * 1000 - nowMs) + 1000 : SECONDARY_LIMIT_MIN_WAIT_MS;
  }
  if (status === 429 || /secondary rate limit|abuse/i.test(githubMessage(body))) return SECONDARY_LIMIT_MIN_WAIT_MS;
  return undefined;
}

/** GitHub's 422 field as a path in the command (`assignees` → `data.input.assignees`). */
function validationField(body: unknown): { field: string | undefined; detail: string } {
  const errors = (body as GithubErrorBody | undefined)?.errors;
  const first: unknown = Array.isArray(errors) ? errors[0] : undefined;
  if (typeof first !== 'object' || first === null) return { field: undefined, detail: '' };
  const { field, code, value, message, resource } = first as Record<string, unknown>;
  const name = typeof field === 'string' && /^[a-z_][a-z0-9_]*$/i.test(field) ? field : undefined;
  const parts = [
    typeof resource === 'string' ? resource : undefined,
    name,
    typeof code === 'string' ? code : undefined,
    value === undefined ? undefined : `(${JSON.stringify(value).slice(0, 100)})`,
    typeof message === 'string' ? `— ${message.slice(0, 200)}` : undefined,
  ].filter(Boolean);
  return { field: name === undefined ? undefined : `data.input.${name}`, detail: parts.join(' ') };
}

/** Maps a non-2xx GitHub answer to what it means for the command. */
export function classifyResponse(status: number, headers: ResponseHeaders, body: unknown, nowMs: number): UpstreamError {
  const said = githubMessage(body);
  const quoted = said ? `: ${said}` : '';
  const wait = rateLimitWaitMs(status, headers, body, nowMs);
  if (wait !== undefined) {
    const until = new Date(nowMs + wait).toISOString();
    return new UpstreamError('AGW_UPSTREAM_RATE_LIMITED', `GitHub rate limit (HTTP ${status}): wait until ${until}${quoted}`, {
      status,
      retry: true,
      retryAfterMs: wait,
      circuitFailure: false,
    });
  }
  if (status === 401) {
    return new UpstreamError('AGW_UPSTREAM_UNAUTHORIZED', `GitHub refused the credentials (HTTP 401)${quoted}`, {
      status,
      retry: false,
      circuitFailure: false,
    });
  }
  if (status === 403) {
    return new UpstreamError('AGW_UPSTREAM_FORBIDDEN', `GitHub refused access (HTTP 403)${quoted}`, {
      status,
      retry: false,
      circuitFailure: false,
    });
  }
  if (status === 404) {
    return new UpstreamError('AGW_UPSTREAM_NOT_FOUND', `GitHub: not found, or not visible to the token (HTTP 404)`, {
      status,
      retry: false,
      circuitFailure: false,
    });
  }
  if (status === 422) {
    const { field, detail } = validationField(body);
    return new UpstreamError('AGW_UPSTREAM_VALIDATION_FAILED', `GitHub refused the request (HTTP 422)${quoted}${detail ? `: ${detail}` : ''}`, {
      status,
      retry: false,
      circuitFailure: false,
      field,
    });
  }
  if (status >= 500) {
    return new UpstreamError('AGW_UPSTREAM_UNAVAILABLE', `GitHub answered HTTP ${status}${quoted}`, {
      status,
      retry: true,
      retryAfterMs: retryAfterMs(headers, nowMs),
      circuitFailure: true,
    });
  }
  return new UpstreamError('AGW_UPSTREAM_REJECTED', `GitHub refused the request (HTTP ${status})${quoted}`, {
    status,
    retry: false,
    circuitFailure: false,
  });
}

/** Failures before a connection existed: the request cannot have reached GitHub. */
const NOT_SENT = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'UND_ERR_CONNECT_TIMEOUT']);

function errorCode(error: unknown): string | undefined {
  const own = (error as { code?: unknown }).code;
  if (typeof own === 'string') return own;
  const cause = (error as { cause?: { code?: unknown } }).cause?.code;
  return typeof cause === 'string' ? cause : undefined;
}

/**
 * Maps an attempt that got no answer. A request that may have reached GitHub is retried only when it is
 * idempotent: re-sending a create after a timeout or a dropped connection could open the issue twice.
 */
export function classifyFailure(error: unknown, options: { idempotent: boolean; timeoutMs: number }): UpstreamError {
  if (error instanceof UpstreamError) return error;
  if (error instanceof BrokenCircuitError) {
    return new UpstreamError('AGW_UPSTREAM_CIRCUIT_OPEN', 'the circuit to GitHub is open after repeated failures; nothing was sent', {
      retry: false,
      circuitFailure: false,
      cause: error,
    });
  }
  const code = errorCode(error);
  const timedOut =
    error instanceof TaskCancelledError ||
    error instanceof undiciErrors.HeadersTimeoutError ||
    error instanceof undiciErrors.BodyTimeoutError ||
    (error as Error).name === 'TimeoutError';
  if (!timedOut && code !== undefined && NOT_SENT.has(code)) {
    return new UpstreamError('AGW_UPSTREAM_UNAVAILABLE', `GitHub could not be reached (${code})`, {
      retry: true,
      circuitFailure: true,
      cause: error,
    });
  }
  const what = timedOut ? `no answer within ${options.timeoutMs} ms` : `the connection failed (${code ?? (error as Error).name})`;
  if (!options.idempotent) {
    return new UpstreamError(
      'AGW_UPSTREAM_OUTCOME_UNKNOWN',
      `${what} after the request was sent; GitHub may have carried it out, so it was not repeated`,
      { retry: false, circuitFailure: true, cause: error },
    );
  }
  return new UpstreamError(timedOut ? 'AGW_UPSTREAM_TIMEOUT' : 'AGW_UPSTREAM_UNAVAILABLE', `GitHub: ${what}`, {
    retry: true,
    circuitFailure: true,
    cause: error,
  });
}

export interface RetryOptions {
  readonly baseDelayMs: number;
  readonly maxDelayMs: number;
}

/** Whether to make another attempt after this failure (attempt counting is the retry policy's). */
export function shouldRetry(error: unknown, options: RetryOptions): boolean {
  return error instanceof UpstreamError && error.retry && (error.retryAfterMs ?? 0) <= options.maxDelayMs;
}

/**
 * The wait before retry number `retry` (1 = the first retry): exponential from `baseDelayMs` with equal jitter
 * (half fixed, half random, so retries from many commands spread out but never come back immediately), at least
 * what the provider asked for, at most `maxDelayMs`.
 */
export function retryDelayMs(error: unknown, retry: number, options: RetryOptions, random: () => number = Math.random): number {
  const exponential = Math.min(options.maxDelayMs, options.baseDelayMs * 2 ** Math.max(0, retry - 1));
  const jittered = exponential / 2 + random() * (exponential / 2);
  const asked = error instanceof UpstreamError ? (error.retryAfterMs ?? 0) : 0;
  return Math.round(Math.min(options.maxDelayMs, Math.max(jittered, asked)));
}
