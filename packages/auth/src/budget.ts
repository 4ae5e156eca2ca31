import type { ApiKeyLimits } from '@switchyard/events';

export interface BudgetDecision {
  readonly allowed: boolean;
  /** The bucket's size. */
  readonly limit: number;
  /** Whole commands left after this one (0 when refused). */
  readonly remaining: number;
  /** Seconds until the bucket is full again. */
  readonly resetSeconds: number;
  /** When refused: seconds until `cost` tokens are there. */
  readonly retryAfterSeconds: number;
  /** The bucket's refill window: seconds from empty to full. */
  readonly windowSeconds: number;
}

interface Bucket {
  tokens: number;
  at: number;
  rate: number;
  burst: number;
}

/**
 * A token bucket per key for commands: `burst` tokens, refilled at `commandsPerSecond`; a command takes one (a
 * batch one per command). Per instance: N adapter instances behind a balancer give a key up to N times the budget
 * (docs/security.md). Buckets that are full again are forgotten, so memory follows the keys active right now.
 */
export class CommandBudget {
  private readonly defaults: ApiKeyLimits;
  private readonly buckets = new Map<string, Bucket>();
  private readonly now: () => number;
  private sweeps = 0;

  constructor(defaults: ApiKeyLimits, now: () => number = () => performance.now()) {
    this.defaults = defaults;
    this.now = now;
  }

  take(keyId: string, cost: number, limits: ApiKeyLimits | undefined): BudgetDecision {
    const { commandsPerSecond: rate, burst } = limits ?? this.defaults;
    const now = this.now();
    const bucket = this.buckets.get(keyId) ?? { tokens: burst, at: now, rate, burst };
    bucket.tokens = Math.min(burst, bucket.tokens + ((now - bucket.at) / 1000) * rate);
    bucket.at = now;
    bucket.rate = rate;
    bucket.burst = burst;
    const allowed = cost <= bucket.tokens;
    if (allowed) bucket.tokens -= cost;
    this.buckets.set(keyId, bucket);
    if (++this.sweeps % 1024 === 0) this.sweep(now);
    const windowSeconds = Math.ceil(burst / rate);
    return {
      allowed,
      limit: burst,
      remaining: Math.floor(bucket.tokens),
      resetSeconds: Math.ceil((burst - bucket.tokens) / rate),
      retryAfterSeconds: allowed ? 0 : Math.max(1, Math.ceil((Math.min(cost, burst) - bucket.tokens) / rate)),
      windowSeconds,
    };
  }

  /** IETF RateLimit header fields (draft-ietf-httpapi-ratelimit-headers) and, when refused, Retry-After. */
  static headers(decision: BudgetDecision): Record<string, string> {
    const headers: Record<string, string> = {
      'ratelimit-limit': String(decision.limit),
      'ratelimit-remaining': String(decision.remaining),
      'ratelimit-reset': String(decision.resetSeconds),
      'ratelimit-policy': `${decision.limit};w=${decision.windowSeconds}`,
    };
    if (!decision.allowed) headers['retry-after'] = String(decision.retryAfterSeconds);
    return headers;
  }

  private sweep(now: number): void {
    for (const [keyId, bucket] of this.buckets) {
      if (bucket.tokens + ((now - bucket.at) / 1000) * bucket.rate >= bucket.burst) this.buckets.delete(keyId);
    }
  }
}
