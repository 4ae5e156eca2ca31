import {
  circuitBreaker,
  ConsecutiveBreaker,
  DelegateBackoff,
  handleAll,
  handleWhen,
  retry,
  timeout,
  TimeoutStrategy,
  type CircuitBreakerPolicy,
  type IRetryBackoffContext,
  type RetryPolicy,
  type TimeoutPolicy,
} from 'cockatiel';
import { Pool } from 'undici';
import type { AdapterMetrics } from '../metrics.js';
import { classifyFailure, classifyResponse, retryDelayMs, shouldRetry, UpstreamError } from './upstream-errors.js';

export interface GithubConnectionOptions {
  /** The connection's name, as commands give it in `data.connection`. */
  readonly name: string;
  /** `https://api.github.com` or a GitHub Enterprise base such as `https://ghe.example.com/api/v3`. */
  readonly baseUrl: string;
  readonly token: string;
  readonly maxConnections: number;
  readonly maxAttempts: number;
  readonly attemptTimeoutMs: number;
  readonly retryBaseDelayMs: number;
  readonly retryMaxDelayMs: number;
  readonly circuitFailureThreshold: number;
  readonly circuitHalfOpenAfterMs: number;
  readonly metrics: AdapterMetrics;
  readonly userAgent?: string;
  readonly now?: () => number;
}

export interface GithubRequest {
  readonly method: 'GET' | 'POST' | 'PATCH';
  /** Path below the base URL, e.g. `/repos/acme/widgets/issues`. */
  readonly path: string;
  readonly body?: unknown;
  /** Whether sending it twice has the same effect as once (PATCH with values: yes; POST create: no). */
  readonly idempotent: boolean;
}

export interface GithubAnswer {
  readonly status: number;
  readonly body: unknown;
}

export type CallOutcome =
  | { readonly ok: true; readonly answer: GithubAnswer; readonly attempts: number }
  | { readonly ok: false; readonly error: UpstreamError; readonly attempts: number };

export interface CallHooks {
  /** Runs before every retry (after the backoff); throwing abandons the call with that error. */
  readonly beforeRetry?: () => Promise<void>;
}

type AttemptResult = { readonly ok: true; readonly answer: GithubAnswer } | { readonly ok: false; readonly error: UpstreamError };

/** Bodies larger than this are refused rather than buffered (an issue with a 64 KiB body is far below). */
const MAX_RESPONSE_BYTES = 4 * 1024 * 1024;

/**
 * One configured GitHub connection: an undici Pool to its origin and the resilience around every call — a
 * per-attempt timeout, retries with exponential backoff and jitter that honour GitHub's retry-after and rate-limit
 * reset, and a circuit breaker shared by every call on the connection. The token stays inside this object: it is
 * only ever written into the Authorization header.
 */
export class GithubConnection {
  readonly name: string;
  private readonly options: GithubConnectionOptions;
  private readonly pool: Pool;
  private readonly basePath: string;
  private readonly headers: Readonly<Record<string, string>>;
  private readonly breaker: CircuitBreakerPolicy;
  private readonly perAttempt: TimeoutPolicy;
  private readonly retries: RetryPolicy;
  private readonly now: () => number;

  constructor(options: GithubConnectionOptions) {
    this.name = options.name;
    this.options = options;
    this.now = options.now ?? Date.now;
    const base = new URL(options.baseUrl);
    this.basePath = base.pathname.replace(/\/+$/, '');
    this.pool = new Pool(base.origin, {
      connections: options.maxConnections,
      keepAliveTimeout: 30000,
      connectTimeout: Math.min(options.attemptTimeoutMs, 10000),
      maxResponseSize: MAX_RESPONSE_BYTES,
    });
    this.headers = {
      authorization: `Bearer ${options.token}`,
      accept: 'application/vnd.github+json',
      'x-github-api-version': '2022-11-28',
      'user-agent': options.userAgent ?? 'switchyard-api-gateway-adapter',
    };
    // Only failures that say the upstream is unwell count: a 4xx answer is a healthy GitHub saying no.
    this.breaker = circuitBreaker(
      handleAll.orWhenResult((result) => !(result as AttemptResult).ok && (result as { error: UpstreamError }).error.circuitFailure),
      {
        halfOpenAfter: options.circuitHalfOpenAfterMs,
        breaker: new ConsecutiveBreaker(options.circuitFailureThreshold),
      },
    );
    options.metrics.circuitState.set({ connection: this.name }, this.breaker.state);
    this.breaker.onStateChange((state) => options.metrics.circuitState.set({ connection: this.name }, state));
    this.perAttempt = timeout(options.attemptTimeoutMs, TimeoutStrategy.Aggressive);
    const delays = { baseDelayMs: options.retryBaseDelayMs, maxDelayMs: options.retryMaxDelayMs };
    // cockatiel counts retries, not attempts: maxAttempts 3 means up to 4 calls.
    this.retries = retry(
      handleWhen((error) => shouldRetry(error, delays)),
      {
        maxAttempts: options.maxAttempts - 1,
        backoff: new DelegateBackoff((context: IRetryBackoffContext<unknown>) =>
          retryDelayMs('error' in context.result ? context.result.error : undefined, context.attempt, delays),
        ),
      },
    );
  }

  /**
   * Sends a request with retries. Resolves with the answer or with why it failed (and how many attempts were
   * made); rejects only with what `hooks.beforeRetry` throws.
   */
  async call(request: GithubRequest, hooks: CallHooks = {}): Promise<CallOutcome> {
    const { attemptTimeoutMs } = this.options;
    let attempts = 0;
    try {
      const answer = await this.retries.execute(async ({ attempt }) => {
        if (attempt > 0) await hooks.beforeRetry?.();
        let result: AttemptResult;
        try {
          // Counted inside the breaker: a call an open circuit refuses never reaches GitHub.
          result = await this.breaker.execute(() => {
            attempts += 1;
            return this.perAttempt.execute((_context, signal) => this.send(request, signal));
          });
        } catch (error) {
          throw classifyFailure(error, { idempotent: request.idempotent, timeoutMs: attemptTimeoutMs });
        }
        if (!result.ok) throw result.error;
        return result.answer;
      });
      return { ok: true, answer, attempts };
    } catch (error) {
      if (error instanceof UpstreamError) return { ok: false, error, attempts };
      throw error;
    }
  }

  /** One HTTP exchange. Resolves for every answer (classified when not 2xx); rejects when there was none. */
  private async send(request: GithubRequest, signal: AbortSignal): Promise<AttemptResult> {
    const started = performance.now();
    const headers: Record<string, string> = { ...this.headers };
    if (request.body !== undefined) headers['content-type'] = 'application/json; charset=utf-8';
    try {
      const response = await this.pool.request({
        path: `${this.basePath}${request.path}`,
        method: request.method,
        headers,
        body: request.body === undefined ? null : JSON.stringify(request.body),
        signal,
        idempotent: request.idempotent,
        headersTimeout: this.options.attemptTimeoutMs,
        bodyTimeout: this.options.attemptTimeoutMs,
      });
      const text = await response.body.text();
      this.options.metrics.upstreamRequests.inc({ connection: this.name, status: String(response.statusCode) });
      this.options.metrics.upstreamDuration.observe({ connection: this.name }, (performance.now() - started) / 1000);
      let body: unknown = undefined;
      try {
        body = text.length > 0 ? JSON.parse(text) : undefined;
      } catch {
        body = undefined;
      }
      if (response.statusCode >= 200 && response.statusCode < 300) {
        return { ok: true, answer: { status: response.statusCode, body } };
      }
      return { ok: false, error: classifyResponse(response.statusCode, response.headers, body, this.now()) };
    } catch (error) {
      this.options.metrics.upstreamRequests.inc({ connection: this.name, status: signal.aborted ? 'timeout' : 'network_error' });
      throw error;
    }
  }

  async close(): Promise<void> {
    await this.pool.close();
  }
}
