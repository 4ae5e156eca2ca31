import { isSwitchyardError } from '@switchyard/events';
import pg from 'pg';

// bigint (int8) columns come back as strings by default; offsets fit in a JS string and stay exact.

/**
 * A pool whose connection attempts fail fast, so an unreachable Postgres is noticed within seconds.
 * `synchronousCommit: false` lets a commit return before its WAL is flushed: a Postgres crash may then lose the
 * last commits — rows and position together, since they share a transaction — and the worker re-applies them
 * (see docs/adr/0002-offsets-in-postgres.md).
 */
export function createPool(connectionString: string, max: number, settings: { synchronousCommit?: boolean } = {}): pg.Pool {
  const pool = new pg.Pool({
    connectionString,
    max,
    ...(settings.synchronousCommit === false ? { options: '-c synchronous_commit=off' } : {}),
    connectionTimeoutMillis: 3000,
    idleTimeoutMillis: 30000,
    keepAlive: true,
    application_name: 'switchyard-sync-worker',
  });
  // A client losing its connection emits 'error': on the pool while idle, on the client itself while checked out
  // between two queries. Unheard, either would be an uncaught exception; heard, the next query on that client fails
  // as a transient error, the batch is retried, and the broken client is discarded on release.
  pool.on('error', () => undefined);
  pool.on('connect', (client) => client.on('error', () => undefined));
  return pool;
}

const TRANSIENT_SQLSTATE_CLASSES = ['08', '53', '57', '58'];
const TRANSIENT_SQLSTATES = new Set(['40001', '40P01', '55P03', '55006']);
const TRANSIENT_NODE_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EAI_AGAIN',
  'ENOTFOUND',
]);
const TRANSIENT_MESSAGES = [
  'Connection terminated',
  'timeout exceeded when trying to connect',
  'Client has encountered a connection error',
  'Connection ended unexpectedly',
  'Query read timeout',
];

/**
 * Whether retrying the same work later can succeed: lost or refused connections, server shutdown or overload,
 * deadlocks and serialization failures — and our own errors flagged retriable (a dead letter Kafka did not take).
 */
export function isTransient(error: unknown): boolean {
  if (isSwitchyardError(error)) return error.retriable;
  const code = (error as { code?: unknown }).code;
  if (typeof code === 'string') {
    if (TRANSIENT_SQLSTATES.has(code) || TRANSIENT_NODE_CODES.has(code)) return true;
    if (/^[0-9A-Z]{5}$/.test(code) && TRANSIENT_SQLSTATE_CLASSES.includes(code.slice(0, 2))) return true;
  }
  const message = (error as Error)?.message ?? '';
  return TRANSIENT_MESSAGES.some((text) => message.includes(text));
}

/** Postgres refused the data itself (class 22 data exception, 23 integrity violation): retrying cannot help. */
export function isDataError(error: unknown): boolean {
  const code = (error as { code?: unknown }).code;
  return typeof code === 'string' && (code.startsWith('22') || code.startsWith('23'));
}
