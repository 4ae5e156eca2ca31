/**
 * GitHub's primary rate limit, per token: `limit` requests per hour-long window that starts with the first
 * counted request; `x-ratelimit-reset` is the window's end in epoch seconds
 * (https://docs.github.com/rest/using-the-rest-api/rate-limits-for-the-rest-api).
 */

export interface RateLimitSnapshot {
  readonly limit: number;
  readonly remaining: number;
  readonly used: number;
  /** Epoch seconds when the window ends. */
  readonly reset: number;
  readonly resource: 'core';
}

interface Window {
  limit: number;
  used: number;
  resetAtMs: number;
}

export const HOUR_MS = 60 * 60 * 1000;

export class RateLimiter {
  private readonly windows = new Map<string, Window>();
  private readonly limit: number;
  private readonly windowMs: number;
  private readonly now: () => Date;

  constructor(limit: number, now: () => Date, windowMs: number = HOUR_MS) {
    this.limit = limit;
    this.now = now;
    this.windowMs = windowMs;
  }

  private window(token: string): Window {
    const nowMs = this.now().getTime();
    let window = this.windows.get(token);
    if (window === undefined || nowMs >= window.resetAtMs) {
      window = { limit: window?.limit ?? this.limit, used: 0, resetAtMs: nowMs + this.windowMs };
      this.windows.set(token, window);
    }
    return window;
  }

  private snapshot(window: Window): RateLimitSnapshot {
    return {
      limit: window.limit,
      remaining: Math.max(0, window.limit - window.used),
      used: window.used,
      reset: Math.ceil(window.resetAtMs / 1000),
      resource: 'core',
    };
  }

  peek(token: string): RateLimitSnapshot {
    return this.snapshot(this.window(token));
  }

  isExhausted(token: string): boolean {
    const window = this.window(token);
    return window.used >= window.limit;
  }

  /** Counts one request against the token's window. */
  consume(token: string): RateLimitSnapshot {
    const window = this.window(token);
    window.used = Math.min(window.limit, window.used + 1);
    return this.snapshot(window);
  }

  /** Test control: sets the limit and/or what is left in the current window, and/or when it ends. */
  set(token: string, change: { limit?: number | undefined; remaining?: number | undefined; resetInSeconds?: number | undefined }): RateLimitSnapshot {
    const window = this.window(token);
    if (change.limit !== undefined) window.limit = change.limit;
    if (change.remaining !== undefined) window.used = Math.max(0, window.limit - change.remaining);
    if (change.resetInSeconds !== undefined) window.resetAtMs = this.now().getTime() + change.resetInSeconds * 1000;
    return this.snapshot(window);
  }

  /** Test control: fresh windows (with the default limit) for one token or all. */
  reset(token?: string): void {
    if (token === undefined) this.windows.clear();
    else this.windows.delete(token);
  }
}

export function rateLimitHeaders(snapshot: RateLimitSnapshot): Record<string, string> {
  return {
    'x-ratelimit-limit': String(snapshot.limit),
    'x-ratelimit-remaining': String(snapshot.remaining),
    'x-ratelimit-used': String(snapshot.used),
    'x-ratelimit-reset': String(snapshot.reset),
    'x-ratelimit-resource': snapshot.resource,
  };
}
