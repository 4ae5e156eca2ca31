import { BrokenCircuitError, TaskCancelledError } from 'cockatiel';
import { errors as undiciErrors } from 'undici';
import { describe, expect, it } from 'vitest';
import {
  classifyFailure,
  classifyGithubAnswer,
  rateLimitWaitMs,
  retryDelayMs,
  SECONDARY_LIMIT_MIN_WAIT_MS,
  shouldRetry,
  type ResponseHeaders,
  type UpstreamError,
} from '../src/index.js';

const NOW = Date.parse('2026-11-24T05:00:00Z');

/** A GitHub answer as the connector sees it. */
function classifyResponse(status: number, headers: ResponseHeaders, body: unknown, nowMs: number): UpstreamError {
  return classifyGithubAnswer({ status, headers, body }, nowMs);
}
const delays = { baseDelayMs: 100, maxDelayMs: 15000 };

function summary(error: UpstreamError) {
  return { code: error.code, retriable: error.retriable, retry: error.retry, circuit: error.circuitFailure, applied: error.applied, field: error.field };
}

describe('mapping GitHub answers to errors', () => {
  it('422 is not retried and names GitHub’s field as a command path', () => {
    const error = classifyResponse(
      422,
      {},
      { message: 'Validation Failed', errors: [{ resource: 'Issue', field: 'assignees', code: 'invalid', value: 'ghost' }] },
      NOW,
    );
    expect(summary(error)).toEqual({
      code: 'AGW_UPSTREAM_VALIDATION_FAILED',
      retriable: false,
      retry: false,
      circuit: false,
      applied: 'no',
      field: 'data.input.assignees',
    });
    expect(error.message).toContain('Validation Failed');
    expect(error.message).toContain('ghost');
  });

  it.each([
    [401, { message: 'Bad credentials' }, 'AGW_UPSTREAM_UNAUTHORIZED'],
    [403, { message: 'Resource not accessible by personal access token' }, 'AGW_UPSTREAM_FORBIDDEN'],
    [404, { message: 'Not Found' }, 'AGW_UPSTREAM_NOT_FOUND'],
    [410, { message: 'This issue was deleted' }, 'AGW_UPSTREAM_REJECTED'],
    [400, { message: 'Problems parsing JSON' }, 'AGW_UPSTREAM_REJECTED'],
  ])('%i is final: %j → %s', (status, body, code) => {
    const error = classifyResponse(status, { 'x-ratelimit-remaining': '4999' }, body, NOW);
    expect(summary(error)).toMatchObject({ code, retriable: false, retry: false, circuit: false, applied: 'no' });
  });

  it.each([
    [500, 'maybe'],
    [502, 'maybe'],
    [503, 'no'],
    [504, 'maybe'],
  ])('%i is retriable and counts against the circuit; carried out: %s', (status, applied) => {
    const error = classifyResponse(status, {}, undefined, NOW);
    expect(summary(error)).toMatchObject({ code: 'AGW_UPSTREAM_UNAVAILABLE', retriable: true, retry: true, circuit: true, applied });
    expect(error.retryAfterMs).toBeUndefined();
  });

  it('a 503 with retry-after asks for that wait', () => {
    expect(classifyResponse(503, { 'retry-after': '2' }, undefined, NOW).retryAfterMs).toBe(2000);
  });

  it('a primary rate limit waits until x-ratelimit-reset (plus a second for its truncation)', () => {
    const headers = { 'x-ratelimit-remaining': '0', 'x-ratelimit-reset': String(NOW / 1000 + 30) };
    const error = classifyResponse(403, headers, { message: 'API rate limit exceeded for user ID 1.' }, NOW);
    expect(summary(error)).toMatchObject({ code: 'AGW_UPSTREAM_RATE_LIMITED', retriable: true, retry: true, circuit: false, applied: 'no' });
    expect(error.retryAfterMs).toBe(31000);
    expect(error.message).toContain('2026-11-24T05:00:31.000Z');
  });

  it('retry-after wins over x-ratelimit-reset, in seconds or as an HTTP date', () => {
    expect(rateLimitWaitMs(429, { 'retry-after': '5', 'x-ratelimit-remaining': '0', 'x-ratelimit-reset': '0' }, {}, NOW)).toBe(5000);
    expect(rateLimitWaitMs(429, { 'retry-after': new Date(NOW + 7000).toUTCString() }, {}, NOW)).toBe(7000);
  });

  it('a secondary limit without retry-after waits at least a minute; a 429 without headers too', () => {
    const body = { message: 'You have exceeded a secondary rate limit. Please wait a few minutes before you try again.' };
    expect(rateLimitWaitMs(403, {}, body, NOW)).toBe(SECONDARY_LIMIT_MIN_WAIT_MS);
    expect(rateLimitWaitMs(429, {}, {}, NOW)).toBe(SECONDARY_LIMIT_MIN_WAIT_MS);
    expect(rateLimitWaitMs(403, { 'x-ratelimit-remaining': '12' }, { message: 'Forbidden' }, NOW)).toBeUndefined();
  });
});

describe('mapping requests that got no answer', () => {
  const refused = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:1'), { code: 'ECONNREFUSED' });
  const reset = new undiciErrors.SocketError('other side closed');

  const options = { provider: 'GitHub', timeoutMs: 1000 };

  it('a refused connection never reached the provider: retried, and certainly not carried out', () => {
    expect(summary(classifyFailure(refused, options))).toMatchObject({
      code: 'AGW_UPSTREAM_UNAVAILABLE',
      retry: true,
      circuit: true,
      applied: 'no',
    });
  });

  it('a timed-out or dropped request may have been carried out', () => {
    expect(summary(classifyFailure(new TaskCancelledError('timed out'), options))).toMatchObject({ code: 'AGW_UPSTREAM_TIMEOUT', retry: true, applied: 'maybe' });
    expect(summary(classifyFailure(new undiciErrors.HeadersTimeoutError(), options))).toMatchObject({ code: 'AGW_UPSTREAM_TIMEOUT', applied: 'maybe' });
    expect(summary(classifyFailure(reset, options))).toMatchObject({ code: 'AGW_UPSTREAM_UNAVAILABLE', retry: true, circuit: true, applied: 'maybe' });
  });

  it('an open circuit sent nothing and is not retried', () => {
    expect(summary(classifyFailure(new BrokenCircuitError(), options))).toMatchObject({
      code: 'AGW_UPSTREAM_CIRCUIT_OPEN',
      retriable: true,
      retry: false,
      circuit: false,
      applied: 'no',
    });
  });
});

describe('retry decisions', () => {
  it('retries what may succeed, within the delay cap', () => {
    expect(shouldRetry(classifyResponse(503, {}, undefined, NOW), delays)).toBe(true);
    expect(shouldRetry(classifyResponse(422, {}, {}, NOW), delays)).toBe(false);
    const soon = classifyResponse(429, { 'retry-after': '3' }, {}, NOW);
    const later = classifyResponse(403, { 'x-ratelimit-remaining': '0', 'x-ratelimit-reset': String(NOW / 1000 + 3600) }, {}, NOW);
    expect(shouldRetry(soon, delays)).toBe(true);
    expect(shouldRetry(later, delays)).toBe(false);
    expect(shouldRetry(new Error('a bug'), delays)).toBe(false);
  });

  it('backs off exponentially with equal jitter, up to the cap', () => {
    const error = classifyResponse(503, {}, undefined, NOW);
    expect([1, 2, 3, 4].map((retry) => retryDelayMs(error, retry, delays, () => 0))).toEqual([50, 100, 200, 400]);
    expect([1, 2, 3, 4].map((retry) => retryDelayMs(error, retry, delays, () => 0.999999))).toEqual([100, 200, 400, 800]);
    expect(retryDelayMs(error, 30, delays, () => 1)).toBe(15000);
  });

  it('waits at least as long as GitHub asked', () => {
    const error = classifyResponse(503, { 'retry-after': '2' }, undefined, NOW);
    expect(retryDelayMs(error, 1, delays, () => 0)).toBe(2000);
  });
});
