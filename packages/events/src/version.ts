import { z } from 'zod';
import { EventError } from './errors.js';

/**
 * An entity version orders the states of one entity. It is a string that sorts bytewise (SQL `COLLATE "C"`):
 *
 *     2026-11-24T05:00:00.000000Z/1795496207044123
 *     └── as-of: when the state became true ─┘ └ tiebreak: when we observed it (epoch µs, 16 digits)
 *
 * The as-of part comes from the provider wherever it says when a state began (GitHub `updated_at`, Slack `ts` /
 * `edited.ts`, Stripe event `created`); otherwise it is the moment we observed the state. The tiebreak is our
 * observation time in microseconds, so at equal as-of the later observation wins. Redelivery of the same event
 * carries the same version and changes nothing. How each source derives its as-of is in `sourceVersions`.
 */
export type EntityVersion = string & { readonly __brand: 'EntityVersion' };

const VERSION_PATTERN = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z\/\d{16}$/;

export const EntityVersion = z
  .string()
  .regex(VERSION_PATTERN, 'expected <ISO-8601 UTC with microseconds>/<16-digit tiebreak>')
  .transform((value) => value as EntityVersion);

/** A point in time with microsecond precision: epoch microseconds as a bigint. */
export type Micros = bigint;

export function microsFromDate(date: Date): Micros {
  return BigInt(date.getTime()) * 1000n;
}

/**
 * Parses an ISO-8601 timestamp keeping up to microsecond precision (JavaScript dates stop at milliseconds).
 * Accepts `Z` or a numeric offset.
 */
export function microsFromIso(iso: string): Micros {
  const match = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.(\d{1,9}))?(Z|[+-]\d{2}:\d{2})$/.exec(iso);
  if (!match) throw new EventError('EVT_INVALID_VERSION', `not an ISO-8601 timestamp: ${iso}`);
  const [, whole, fraction = '', zone] = match;
  const seconds = Date.parse(`${whole}${zone}`);
  if (Number.isNaN(seconds)) throw new EventError('EVT_INVALID_VERSION', `not an ISO-8601 timestamp: ${iso}`);
  return BigInt(seconds) * 1000n + BigInt(fraction.padEnd(6, '0').slice(0, 6));
}

/** Slack-style `1700000000.123456` (seconds with a microsecond fraction). */
export function microsFromEpochSecondsString(value: string): Micros {
  const match = /^(\d+)(?:\.(\d{1,6}))?$/.exec(value);
  if (!match) throw new EventError('EVT_INVALID_VERSION', `not an epoch-seconds timestamp: ${value}`);
  const [, seconds = '0', fraction = ''] = match;
  return BigInt(seconds) * 1_000_000n + BigInt(fraction.padEnd(6, '0'));
}

export function microsFromEpochSeconds(seconds: number): Micros {
  return BigInt(Math.trunc(seconds)) * 1_000_000n;
}

function isoMicros(micros: Micros): string {
  const millis = micros / 1000n;
  const iso = new Date(Number(millis)).toISOString(); // 2026-11-24T05:00:00.123Z
  const sub = (micros % 1000n).toString().padStart(3, '0');
  return `${iso.slice(0, 23)}${sub}Z`;
}

export function entityVersion(asOf: Micros, observedAt: Micros): EntityVersion {
  if (asOf < 0n || observedAt < 0n || observedAt >= 10n ** 16n) {
    throw new EventError('EVT_INVALID_VERSION', 'version timestamps out of range');
  }
  return `${isoMicros(asOf)}/${observedAt.toString().padStart(16, '0')}` as EntityVersion;
}

export function parseEntityVersion(value: string): EntityVersion {
  if (!VERSION_PATTERN.test(value)) {
    throw new EventError('EVT_INVALID_VERSION', `not an entity version: ${value}`);
  }
  return value as EntityVersion;
}

/** Total order on versions; equal to bytewise string comparison, which is what Postgres does with COLLATE "C". */
export function compareVersions(a: EntityVersion, b: EntityVersion): -1 | 0 | 1 {
  return a < b ? -1 : a > b ? 1 : 0;
}
