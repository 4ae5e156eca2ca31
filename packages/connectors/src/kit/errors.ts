import { CommandApiError, type CommandErrorCode } from '@switchyard/api';
import { BrokenCircuitError, TaskCancelledError } from 'cockatiel';
import { errors as undiciErrors } from 'undici';

/**
 * What one attempt at a provider came to when it was not a success, and what that allows next. Built by pure
 * functions from the status, headers and body of an answer (the connector's `classify`) or from the error of a
 * request that got none (`classifyFailure`), so every decision is unit-tested without a server.
 */
export class UpstreamError extends CommandApiError {
  /** The HTTP status, when an answer arrived. */
  readonly status: number | undefined;
  /** Whether another attempt may get a different answer (the command's attempts and delay cap still apply). */
  readonly retry: boolean;
  /** The least time the provider asked us to wait (retry-after, a rate-limit reset). */
  readonly retryAfterMs: number | undefined;
  /** Whether it says something about the provider's health (5xx, network, timeout), for the circuit breaker. */
  readonly circuitFailure: boolean;
  /**
   * Whether the provider may have carried the request out: `no` for a refusal or a request that never left,
   * `maybe` when it may have arrived and no answer says it did not (timeout after sending, dropped connection,
   * 5xx). A write that cannot be repeated safely is never sent again after a `maybe` until a lookup says it was
   * not carried out.
   */
  readonly applied: 'no' | 'maybe';

  constructor(
    code: CommandErrorCode,
    message: string,
    options: {
      status?: number | undefined;
      retry: boolean;
      retryAfterMs?: number | undefined;
      circuitFailure: boolean;
      applied?: 'no' | 'maybe';
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
    this.applied = options.applied ?? 'no';
  }
}

export type ResponseHeaders = Readonly<Record<string, string | string[] | undefined>>;

export function header(headers: ResponseHeaders, name: string): string | undefined {
  const value = headers[name];
  return Array.isArray(value) ? value[0] : value;
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
 * A 5xx: the provider is unwell. 503 says it could not take the request at all (RFC 9110 §15.6.4), so nothing
 * happened; after a 500, 502 or 504 a write may or may not have been carried out before the failure.
 */
export function serverError(provider: string, status: number, headers: ResponseHeaders, nowMs: number, said = ''): UpstreamError {
  return new UpstreamError('AGW_UPSTREAM_UNAVAILABLE', `${provider} answered HTTP ${status}${said ? `: ${said}` : ''}`, {
    status,
    retry: true,
    retryAfterMs: retryAfterMs(headers, nowMs),
    circuitFailure: true,
    applied: status === 503 ? 'no' : 'maybe',
  });
}

/** Failures before a connection existed: the request cannot have reached the provider. */
const NOT_SENT = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'UND_ERR_CONNECT_TIMEOUT']);

function errorCode(error: unknown): string | undefined {
  const own = (error as { code?: unknown }).code;
  if (typeof own === 'string') return own;
  const cause = (error as { cause?: { code?: unknown } }).cause?.code;
  return typeof cause === 'string' ? cause : undefined;
}

/**
 * Maps an attempt that got no answer. One that never left (refused connection, unknown host, open circuit) is
 * `applied: no`; one that may have reached the provider (a timeout after sending, a dropped connection) is
 * `applied: maybe`, and the caller decides from the write's idempotency whether it may be sent again.
 */
export function classifyFailure(error: unknown, options: { provider: string; timeoutMs: number }): UpstreamError {
  if (error instanceof UpstreamError) return error;
  if (error instanceof BrokenCircuitError) {
    return new UpstreamError('AGW_UPSTREAM_CIRCUIT_OPEN', `the circuit to ${options.provider} is open after repeated failures; nothing was sent`, {
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
    return new UpstreamError('AGW_UPSTREAM_UNAVAILABLE', `${options.provider} could not be reached (${code})`, {
      retry: true,
      circuitFailure: true,
      cause: error,
    });
  }
  const what = timedOut ? `no answer within ${options.timeoutMs} ms` : `the connection failed (${code ?? (error as Error).name})`;
  return new UpstreamError(timedOut ? 'AGW_UPSTREAM_TIMEOUT' : 'AGW_UPSTREAM_UNAVAILABLE', `${options.provider}: ${what}`, {
    retry: true,
    circuitFailure: true,
    applied: 'maybe',
    cause: error,
  });
}

/** The answer was 2xx but not what the command expects (a connector's answer parser throws it). */
export function badResponse(provider: string, what: string): UpstreamError {
  return new UpstreamError('AGW_UPSTREAM_BAD_RESPONSE', `${provider} answered with ${what}`, { retry: false, circuitFailure: false });
}

export interface RetryDelays {
  readonly baseDelayMs: number;
  readonly maxDelayMs: number;
}

/** Whether to make another attempt after this failure (attempt counting is the caller's). */
export function shouldRetry(error: unknown, options: RetryDelays): boolean {
  return error instanceof UpstreamError && error.retry && (error.retryAfterMs ?? 0) <= options.maxDelayMs;
}

/**
 * The wait before retry number `retry` (1 = the first retry): exponential from `baseDelayMs` with equal jitter
 * (half fixed, half random, so retries from many commands spread out but never come back immediately), at least
 * what the provider asked for, at most `maxDelayMs`.
 */
export function retryDelayMs(error: unknown, retry: number, options: RetryDelays, random: () => number = Math.random): number {
  const exponential = Math.min(options.maxDelayMs, options.baseDelayMs * 2 ** Math.max(0, retry - 1));
  const jittered = exponential / 2 + random() * (exponential / 2);
  const asked = error instanceof UpstreamError ? (error.retryAfterMs ?? 0) : 0;
  return Math.round(Math.min(options.maxDelayMs, Math.max(jittered, asked)));
}
