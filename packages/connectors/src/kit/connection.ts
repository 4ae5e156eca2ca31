import type { CommandApiError } from '@switchyard/api';
import type { CommandInput, CommandType } from '@switchyard/events';
import {
  bulkhead,
  circuitBreaker,
  ConsecutiveBreaker,
  handleAll,
  timeout,
  TimeoutStrategy,
  type BulkheadPolicy,
  type CircuitBreakerPolicy,
  type TimeoutPolicy,
} from 'cockatiel';
import { Pool } from 'undici';
import { classifyFailure, retryDelayMs, shouldRetry, UpstreamError, type RetryDelays } from './errors.js';
import { handlerFor, type CommandHandler, type Connector, type ConnectionSettings, type EntityState, type LookupRequester, type ProviderAnswer, type ProviderRequest } from './types.js';

/** The metrics a connection records (prom-client's Counter, Histogram and Gauge fit). */
export interface ConnectionMetrics {
  /** Requests by connection and HTTP status (or `timeout`, `network_error`). */
  readonly upstreamRequests: { inc(labels: { connection: string; status: string }): void };
  readonly upstreamDuration: { observe(labels: { connection: string }, seconds: number): void };
  /** 0 closed, 1 open, 2 half-open, 3 isolated (cockatiel's CircuitState). */
  readonly circuitState: { set(labels: { connection: string }, value: number): void };
  /** Lookups for a write after a lost answer, by outcome (`found`, `absent`, `undecided`). */
  readonly lookups: { inc(labels: { connection: string; outcome: string }): void };
}

/** How hard a connection tries: the same for every command on it. */
export interface ConnectionPolicy {
  /** Attempts per command at the provider, the first included. */
  readonly maxAttempts: number;
  readonly attemptTimeoutMs: number;
  readonly retryBaseDelayMs: number;
  /** Longest wait between attempts, also for a provider's retry-after: a longer one fails the command instead. */
  readonly retryMaxDelayMs: number;
  readonly circuitFailureThreshold: number;
  readonly circuitHalfOpenAfterMs: number;
  /** Requests in flight at once on this connection; more wait their turn. */
  readonly maxConcurrency: number;
  /** Sockets kept open to the provider. */
  readonly maxConnections: number;
  /** Between two lookups for a write whose answer was lost. */
  readonly lookupIntervalMs: number;
}

export interface ConnectionOptions {
  /** As commands name it in `data.connection`. */
  readonly name: string;
  readonly connector: Connector;
  readonly settings: ConnectionSettings & { readonly settleMs?: number | undefined };
  readonly policy: ConnectionPolicy;
  readonly metrics: ConnectionMetrics;
  readonly userAgent?: string;
  readonly now?: () => number;
}

/** What carrying a command out needs from its caller. */
export interface ExecuteContext {
  readonly commandId: string;
  readonly idempotencyKey: string;
  /** When an earlier owner of the command (a crashed or replaced instance) started its last attempt, and which. */
  readonly previous?: { readonly attempt: number; readonly startedAt: number } | undefined;
  /** Epoch ms by which the command must be decided; an undecidable lost answer then ends as OUTCOME_UNKNOWN. */
  readonly deadline: number;
  /**
   * Called before every attempt that may reach the provider (numbers continue from `previous`), so the caller can
   * record it; for a `lookup` write this must be durable before the request goes out. Throwing abandons.
   */
  beforeAttempt(attempt: number, write: 'repeatable' | 'once'): Promise<void>;
  /** Called while waiting (backoff, lookups); throwing abandons. */
  keepAlive(): Promise<void>;
}

export type ExecutionOutcome =
  | { readonly ok: true; readonly entity: EntityState; readonly attempts: number; readonly foundExisting: boolean }
  | { readonly ok: false; readonly error: UpstreamError | CommandApiError; readonly attempts: number };

type Attempt = { readonly ok: true; readonly answer: ProviderAnswer } | { readonly ok: false; readonly error: UpstreamError };

/** Bodies larger than this are refused rather than buffered. */
const MAX_RESPONSE_BYTES = 4 * 1024 * 1024;

function encodeBody(body: ProviderRequest['body']): { payload: string | null; contentType?: string } {
  if (body === undefined) return { payload: null };
  if ('json' in body) return { payload: JSON.stringify(body.json), contentType: 'application/json; charset=utf-8' };
  return { payload: new URLSearchParams(body.form).toString(), contentType: 'application/x-www-form-urlencoded' };
}

/**
 * One configured connection to a provider: an undici Pool to its origin and the resilience around every request —
 * a concurrency cap, a per-attempt timeout, a circuit breaker shared by every request on the connection, retries
 * with capped exponential backoff and jitter that honour the provider's requested wait — and the rules that carry
 * a write out exactly once (`execute`). Secrets stay inside: they are only written into request headers.
 */
export class Connection {
  readonly name: string;
  readonly connector: Connector;
  private readonly policy: ConnectionPolicy;
  private readonly metrics: ConnectionMetrics;
  private readonly pool: Pool;
  private readonly basePath: string;
  private readonly headers: Readonly<Record<string, string>>;
  private readonly breaker: CircuitBreakerPolicy;
  private readonly perAttempt: TimeoutPolicy;
  private readonly cap: BulkheadPolicy;
  private readonly delays: RetryDelays;
  private readonly settleMs: number;
  private readonly now: () => number;
  private identityAnswer: Promise<string> | undefined;

  constructor(options: ConnectionOptions) {
    this.name = options.name;
    this.connector = options.connector;
    this.policy = options.policy;
    this.metrics = options.metrics;
    this.now = options.now ?? Date.now;
    this.settleMs = options.settings.settleMs ?? options.connector.settleMs;
    const base = new URL(options.settings.baseUrl);
    this.basePath = base.pathname.replace(/\/+$/, '');
    this.pool = new Pool(base.origin, {
      connections: options.policy.maxConnections,
      keepAliveTimeout: 30000,
      connectTimeout: Math.min(options.policy.attemptTimeoutMs, 10000),
      maxResponseSize: MAX_RESPONSE_BYTES,
    });
    this.headers = { ...options.connector.headers(options.settings), 'user-agent': options.userAgent ?? 'switchyard' };
    // Only failures that say the provider is unwell count: a 4xx answer is a healthy provider saying no.
    this.breaker = circuitBreaker(
      handleAll.orWhenResult((result) => !(result as Attempt).ok && (result as { error: UpstreamError }).error.circuitFailure),
      { halfOpenAfter: options.policy.circuitHalfOpenAfterMs, breaker: new ConsecutiveBreaker(options.policy.circuitFailureThreshold) },
    );
    this.metrics.circuitState.set({ connection: this.name }, this.breaker.state);
    this.breaker.onStateChange((state) => this.metrics.circuitState.set({ connection: this.name }, state));
    this.perAttempt = timeout(options.policy.attemptTimeoutMs, TimeoutStrategy.Aggressive);
    this.cap = bulkhead(options.policy.maxConcurrency, Number.MAX_SAFE_INTEGER);
    this.delays = { baseDelayMs: options.policy.retryBaseDelayMs, maxDelayMs: options.policy.retryMaxDelayMs };
  }

  /** Whether this connection's connector carries out `type`. */
  handles(type: string): boolean {
    return Object.hasOwn(this.connector.commands, type);
  }

  /**
   * Carries out a command. Resolves with the entity state the provider reported, or with why it failed; rejects
   * only with what the context's hooks throw (the caller abandoned the command).
   *
   * - A `repeatable` or `key` write is sent again after any retriable failure, lost answers included.
   * - A `lookup` write is never sent blindly again once it may have reached the provider (timeout after sending,
   *   dropped connection, 5xx), nor when an earlier owner's attempt may have: the connector's `find` looks for it
   *   until it is found (the command succeeds with it) or until the provider can no longer be carrying the lost
   *   request out and it is still absent (then, attempts permitting, it is sent again). If no lookup can decide
   *   before the deadline, the command fails as AGW_UPSTREAM_OUTCOME_UNKNOWN.
   */
  async execute<T extends CommandType>(type: T, input: CommandInput<T>, context: ExecuteContext): Promise<ExecutionOutcome> {
    const handler = handlerFor(this.connector, type);
    if (handler === undefined) throw new Error(`${this.connector.title} does not carry out ${type}`);
    const once = handler.idempotency.kind === 'lookup';
    let attempt = context.previous?.attempt ?? 0;
    let made = 0;
    // An attempt whose outcome is unknown, to be settled by lookups before anything is sent again.
    let unsettled: { startedAt: number; error: UpstreamError | undefined } | undefined =
      once && context.previous !== undefined ? { startedAt: context.previous.startedAt, error: undefined } : undefined;
    let lastError: UpstreamError | undefined;
    for (;;) {
      if (unsettled !== undefined && handler.idempotency.kind === 'lookup') {
        const settled = await this.settle(handler, input, context, unsettled.startedAt);
        if (settled.found) return { ok: true, entity: settled.entity, attempts: made, foundExisting: true };
        if (settled.undecided) {
          const error = new UpstreamError(
            'AGW_UPSTREAM_OUTCOME_UNKNOWN',
            `${this.connector.title} may have carried the request out, and no lookup could tell before the command's deadline` +
              (unsettled.error ? ` (the attempt: ${unsettled.error.message})` : ''),
            { retry: false, circuitFailure: false, cause: settled.cause },
          );
          return { ok: false, error, attempts: made };
        }
        unsettled = undefined;
      }
      if (made >= this.policy.maxAttempts || this.now() > context.deadline) {
        const error =
          lastError ??
          new UpstreamError('AGW_UPSTREAM_UNAVAILABLE', `${this.connector.title}: the command's deadline passed before an attempt could be made`, {
            retry: true,
            circuitFailure: false,
          });
        return { ok: false, error, attempts: made };
      }
      if (made > 0 && lastError !== undefined) await this.wait(retryDelayMs(lastError, made, this.delays), context);

      attempt += 1;
      made += 1;
      await context.beforeAttempt(attempt, once ? 'once' : 'repeatable');
      const observedContext = { commandId: context.commandId, idempotencyKey: context.idempotencyKey, observedAt: new Date(this.now()) };
      const request = this.withIdempotencyKey(handler, handler.request(input, observedContext), context.idempotencyKey);
      const startedAt = this.now();
      const result = await this.attempt(request);
      if (result.ok) {
        try {
          const entity = handler.entity(result.answer, input, { ...observedContext, observedAt: new Date(this.now()) });
          return { ok: true, entity, attempts: made, foundExisting: false };
        } catch (error) {
          if (error instanceof UpstreamError) return { ok: false, error, attempts: made };
          throw error;
        }
      }
      lastError = result.error;
      // A request the open circuit refused never reached the provider: it is not an attempt.
      if (result.error.code === 'AGW_UPSTREAM_CIRCUIT_OPEN') made -= 1;
      if (once && result.error.applied === 'maybe') {
        unsettled = { startedAt, error: result.error };
        continue;
      }
      if (!shouldRetry(result.error, this.delays)) return { ok: false, error: result.error, attempts: made };
    }
  }

  /**
   * For a command that may no longer be sent (expired) but that an earlier owner may have: only looks for it.
   * Resolves as a success when it is found, with `absent` when it certainly was not carried out, and as
   * AGW_UPSTREAM_OUTCOME_UNKNOWN when that cannot be told (a repeatable write may have been applied or not).
   */
  async recover<T extends CommandType>(type: T, input: CommandInput<T>, context: ExecuteContext, absent: UpstreamError | CommandApiError): Promise<ExecutionOutcome> {
    const handler = handlerFor(this.connector, type);
    if (handler === undefined) throw new Error(`${this.connector.title} does not carry out ${type}`);
    const startedAt = context.previous?.startedAt ?? this.now();
    const unknown = (cause?: unknown) =>
      new UpstreamError('AGW_UPSTREAM_OUTCOME_UNKNOWN', `${this.connector.title} may have carried out an earlier attempt of the command, and that cannot be told now`, {
        retry: false,
        circuitFailure: false,
        cause,
      });
    if (handler.idempotency.kind !== 'lookup') return { ok: false, error: unknown(), attempts: 0 };
    const settled = await this.settle(handler, input, context, startedAt);
    if (settled.found) return { ok: true, entity: settled.entity, attempts: 0, foundExisting: true };
    return { ok: false, error: settled.undecided ? unknown(settled.cause) : absent, attempts: 0 };
  }

  /**
   * Looks for a write whose answer was lost until it is found, or it is certainly absent (not found, and the
   * provider's settle time since the attempt began has passed), or the deadline comes.
   */
  private async settle<T extends CommandType>(
    handler: CommandHandler<T>,
    input: CommandInput<T>,
    context: ExecuteContext,
    startedAt: number,
  ): Promise<{ found: true; entity: EntityState } | { found: false; undecided: boolean; cause?: unknown }> {
    const idempotency = handler.idempotency;
    if (idempotency.kind !== 'lookup') return { found: false, undecided: false };
    let cause: unknown;
    // Lookups back off (base, 2×, 4× … 8× the interval) so that many lost answers at once do not hammer a provider.
    let interval = this.policy.lookupIntervalMs;
    for (;;) {
      const lookedAt = this.now();
      try {
        const result = await idempotency.find(input, { commandId: context.commandId, since: new Date(startedAt) }, this.requester(context));
        if (result.found) {
          this.metrics.lookups.inc({ connection: this.name, outcome: 'found' });
          return { found: true, entity: result.entity };
        }
        // Absent in a list read after the provider can no longer be working on the request: it was not carried out.
        if (lookedAt >= startedAt + this.settleMs) {
          this.metrics.lookups.inc({ connection: this.name, outcome: 'absent' });
          return { found: false, undecided: false };
        }
      } catch (error) {
        if (!(error instanceof UpstreamError)) throw error;
        cause = error;
      }
      const untilSettled = startedAt + this.settleMs - this.now();
      const pause = Math.max(0, Math.min(interval, untilSettled > 0 ? untilSettled : interval));
      interval = Math.min(interval * 2, this.policy.lookupIntervalMs * 8);
      if (this.now() + pause > context.deadline) {
        this.metrics.lookups.inc({ connection: this.name, outcome: 'undecided' });
        return { found: false, undecided: true, cause };
      }
      await this.wait(pause, context);
    }
  }

  private withIdempotencyKey<T extends CommandType>(handler: CommandHandler<T>, request: ProviderRequest, key: string): ProviderRequest {
    if (handler.idempotency.kind !== 'key') return request;
    return { ...request, headers: { ...request.headers, [handler.idempotency.header]: key } };
  }

  /** GETs for lookups: retried on every retriable failure (reading twice is harmless), keeping the caller alive. */
  private requester(context: ExecuteContext): LookupRequester {
    return {
      get: (path) => this.read({ method: 'GET', path }, context),
      identity: () => this.identity(context),
    };
  }

  private identity(context?: ExecuteContext): Promise<string> {
    const spec = this.connector.identity;
    if (spec === undefined) return Promise.reject(new Error(`${this.connector.title} has no identity request`));
    this.identityAnswer ??= this.read(spec.request, context).then(
      (answer) => spec.read(answer),
      (error: unknown) => {
        this.identityAnswer = undefined;
        throw error;
      },
    );
    return this.identityAnswer;
  }

  /**
   * A read with the connection's retries; rejects with the last UpstreamError. Reads that settle a lost answer
   * pass an open circuit (with their own backoff): the circuit must not turn a write that can be found into one
   * whose outcome is unknown.
   */
  async read(request: ProviderRequest, context?: Pick<ExecuteContext, 'keepAlive'>): Promise<ProviderAnswer> {
    let lastError: UpstreamError | undefined;
    for (let made = 1; made <= this.policy.maxAttempts; made += 1) {
      if (lastError !== undefined) {
        const delay = retryDelayMs(lastError, made - 1, this.delays);
        if (context) await this.wait(delay, context);
        else await new Promise((resolve) => setTimeout(resolve, delay));
      }
      const result = await this.attempt(request, { breaker: false });
      if (result.ok) return result.answer;
      lastError = result.error;
      if (!shouldRetry(result.error, this.delays)) break;
    }
    throw lastError!;
  }

  /** One attempt through the concurrency cap, the breaker (unless told not to) and the per-attempt timeout. */
  private async attempt(request: ProviderRequest, options: { breaker: boolean } = { breaker: true }): Promise<Attempt> {
    const send = () => this.perAttempt.execute((_context, signal) => this.exchange(request, signal));
    try {
      // Counted inside the breaker: a request an open circuit refuses never reaches the provider.
      return await this.cap.execute(() => (options.breaker ? this.breaker.execute(send) : send()));
    } catch (error) {
      return { ok: false, error: classifyFailure(error, { provider: this.connector.title, timeoutMs: this.policy.attemptTimeoutMs }) };
    }
  }

  /** One HTTP exchange. Resolves for every answer (classified when not 2xx); rejects when there was none. */
  private async exchange(request: ProviderRequest, signal: AbortSignal): Promise<Attempt> {
    const started = performance.now();
    const { payload, contentType } = encodeBody(request.body);
    const headers: Record<string, string> = { ...this.headers, ...request.headers };
    if (contentType !== undefined) headers['content-type'] = contentType;
    try {
      const response = await this.pool.request({
        path: `${this.basePath}${request.path}`,
        method: request.method,
        headers,
        body: payload,
        signal,
        headersTimeout: this.policy.attemptTimeoutMs,
        bodyTimeout: this.policy.attemptTimeoutMs,
      });
      const text = await response.body.text();
      this.metrics.upstreamRequests.inc({ connection: this.name, status: String(response.statusCode) });
      this.metrics.upstreamDuration.observe({ connection: this.name }, (performance.now() - started) / 1000);
      let body: unknown = undefined;
      try {
        body = text.length > 0 ? JSON.parse(text) : undefined;
      } catch {
        body = undefined;
      }
      const answer: ProviderAnswer = { status: response.statusCode, headers: response.headers, body };
      if (response.statusCode >= 200 && response.statusCode < 300) return { ok: true, answer };
      return { ok: false, error: this.connector.classify(answer, this.now()) };
    } catch (error) {
      this.metrics.upstreamRequests.inc({ connection: this.name, status: signal.aborted ? 'timeout' : 'network_error' });
      throw error;
    }
  }

  /** Waits `ms`, calling `keepAlive` at least every second (it heartbeats the consumer group, or abandons). */
  private async wait(ms: number, context: Pick<ExecuteContext, 'keepAlive'>): Promise<void> {
    const until = this.now() + ms;
    for (;;) {
      await context.keepAlive();
      const left = until - this.now();
      if (left <= 0) return;
      await new Promise((resolve) => setTimeout(resolve, Math.min(1000, left)));
    }
  }

  async close(): Promise<void> {
    await this.pool.close();
  }
}
