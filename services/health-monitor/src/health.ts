import type { ApiHealthData, HealthStatus } from '@switchyard/events';

/** What one probe saw. */
export type ProbeOutcome =
  | { readonly kind: 'ok'; readonly latencyMs: number; readonly httpStatus: number }
  | { readonly kind: 'failed'; readonly latencyMs: number | null; readonly httpStatus: number | null; readonly reason: string };

export interface ApiHealthState {
  readonly status: HealthStatus | 'unknown';
  readonly since: Date | null;
  readonly consecutiveFailures: number;
}

export const initialHealth: ApiHealthState = { status: 'unknown', since: null, consecutiveFailures: 0 };

export interface HealthPolicy {
  readonly degradedLatencyMs: number;
  readonly failureThreshold: number;
}

/**
 * Decides an API's status from its previous state and a new probe. Pure: the caller passes the time.
 * - a failure below the threshold → `degraded`; at or above it → `down`;
 * - a success slower than `degradedLatencyMs` → `degraded` (reason `slow`); otherwise `up`.
 * Returns the new state and, when the status changed, the event data to publish.
 */
export function decideHealth(
  api: string,
  previous: ApiHealthState,
  outcome: ProbeOutcome,
  policy: HealthPolicy,
  now: Date,
): { state: ApiHealthState; change: ApiHealthData | undefined } {
  const failures = outcome.kind === 'failed' ? previous.consecutiveFailures + 1 : 0;
  let status: HealthStatus;
  let reason: string | null;
  if (outcome.kind === 'failed') {
    status = failures >= policy.failureThreshold ? 'down' : 'degraded';
    reason = outcome.reason;
  } else if (outcome.latencyMs > policy.degradedLatencyMs) {
    status = 'degraded';
    reason = 'slow';
  } else {
    status = 'up';
    reason = null;
  }
  const changed = status !== previous.status;
  const since = changed || previous.since === null ? now : previous.since;
  const state: ApiHealthState = { status, since, consecutiveFailures: failures };
  if (!changed) return { state, change: undefined };
  return {
    state,
    change: {
      api,
      status,
      previous: previous.status,
      since: since.toISOString(),
      checkedAt: now.toISOString(),
      latencyMs: outcome.latencyMs === null ? null : Math.round(outcome.latencyMs),
      httpStatus: outcome.httpStatus,
      reason,
      consecutiveFailures: failures,
    },
  };
}
