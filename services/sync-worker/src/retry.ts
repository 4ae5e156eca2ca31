import { setTimeout as sleep } from 'node:timers/promises';
import { isSwitchyardError, type SwitchyardError } from '@switchyard/events';
import type { PartitionBatch } from '@switchyard/kafka';
import { isTransient } from './db.js';
import { SyncError } from './errors.js';

export interface RetryPolicy {
  readonly initialMs: number;
  readonly maxMs: number;
}

export interface RetryHooks {
  onFailure(error: SwitchyardError, attempt: number, delayMs: number): void;
  onSuccess(failedAttempts: number): void;
}


/** Full-jitter-from-half exponential backoff: attempt 0 waits ~initial, doubling up to `maxMs`. */
export function backoffMs(policy: RetryPolicy, attempt: number, random: () => number = Math.random): number {
  const delay = Math.min(policy.maxMs, policy.initialMs * 2 ** Math.min(attempt, 30));
  return delay / 2 + random() * (delay / 2);
}

/**
 * Runs one batch's work until it succeeds, the batch goes stale, or a non-transient error escapes. Between
 * attempts it waits (never faster than the backoff) and heartbeats, so a long Postgres outage neither skips
 * records nor costs the partition; a rebalance makes the heartbeat throw, which hands the batch back unmarked.
 * `signal` cuts a wait short; the batch's `isStale` then decides whether there is another attempt.
 */
export async function retryTransient(
  batch: Pick<PartitionBatch, 'isStale' | 'heartbeat'>,
  policy: RetryPolicy,
  run: () => Promise<void>,
  hooks: RetryHooks,
  signal?: AbortSignal,
): Promise<void> {
  for (let attempt = 0; ; attempt += 1) {
    if (batch.isStale()) return;
    try {
      await run();
      hooks.onSuccess(attempt);
      return;
    } catch (error) {
      if (!isTransient(error)) throw error;
      // Our own retriable errors keep their code (a dead letter Kafka refused is not a database problem).
      const wrapped = isSwitchyardError(error)
        ? error
        : new SyncError('SYNC_DB_UNAVAILABLE', (error as Error).message || String(error), { cause: error });
      const delay = backoffMs(policy, attempt);
      hooks.onFailure(wrapped, attempt, delay);
      await sleep(delay, undefined, signal === undefined ? undefined : { signal }).catch(() => undefined);
      if (batch.isStale()) return;
      await batch.heartbeat();
    }
  }
}
