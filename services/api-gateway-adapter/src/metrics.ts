import type { Registry } from '@switchyard/service-runtime';
import type { ConnectionMetrics } from '@switchyard/connectors';
import { Counter, Gauge, Histogram } from 'prom-client';

/** The adapter's Prometheus metrics, made once per registry and handed to the parts that record them. */
export interface AdapterMetrics extends ConnectionMetrics {
  /**
   * Commands submitted over HTTP, by type and outcome: `produced`, `replayed` (a repeated Idempotency-Key answered
   * with the original receipt), `conflict` (the key named another command), `invalid`, `unavailable`.
   */
  readonly submissions: Counter<'type' | 'outcome'>;
  /** Commands read again that already had a terminal result (after a crash or rebalance): not carried out again. */
  readonly redelivered: Counter<'type'>;
  /** Command results produced, by command type and status (accepted, succeeded, failed, rejected). */
  readonly commands: Counter<'type' | 'status'>;
  /** Time from picking a command up to its final result, by type and final status. */
  readonly commandDuration: Histogram<'type' | 'status'>;
  /** Requests to provider APIs by connection and HTTP status (or `timeout`, `network_error`). */
  readonly upstreamRequests: Counter<'connection' | 'status'>;
  readonly upstreamDuration: Histogram<'connection'>;
  /** 0 closed, 1 open, 2 half-open, 3 isolated (cockatiel's CircuitState). */
  readonly circuitState: Gauge<'connection'>;
  /** Lookups for a write whose answer was lost, by connection and outcome (`found`, `absent`, `undecided`). */
  readonly lookups: Counter<'connection' | 'outcome'>;
}

export function createAdapterMetrics(registry: Registry): AdapterMetrics {
  const registers = [registry];
  return {
    submissions: new Counter({
      name: 'switchyard_command_submissions_total',
      help: 'Commands submitted over HTTP, by type and outcome (produced, replayed, conflict, invalid, unavailable)',
      labelNames: ['type', 'outcome'],
      registers,
    }),
    redelivered: new Counter({
      name: 'switchyard_commands_redelivered_total',
      help: 'Commands read again that already had a terminal result, so were not carried out again',
      labelNames: ['type'],
      registers,
    }),
    lookups: new Counter({
      name: 'switchyard_upstream_lookups_total',
      help: 'Lookups for a write whose answer was lost, by connection and outcome (found, absent, undecided)',
      labelNames: ['connection', 'outcome'],
      registers,
    }),
    commands: new Counter({
      name: 'switchyard_commands_total',
      help: 'Command results produced by the adapter, by command type and status',
      labelNames: ['type', 'status'],
      registers,
    }),
    commandDuration: new Histogram({
      name: 'switchyard_command_duration_seconds',
      help: 'Time from picking a command up to its final result',
      labelNames: ['type', 'status'],
      buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
      registers,
    }),
    upstreamRequests: new Counter({
      name: 'switchyard_upstream_requests_total',
      help: 'Requests to provider APIs by connection and HTTP status (or timeout / network_error)',
      labelNames: ['connection', 'status'],
      registers,
    }),
    upstreamDuration: new Histogram({
      name: 'switchyard_upstream_request_duration_seconds',
      help: 'Latency of provider API requests that got an answer',
      labelNames: ['connection'],
      buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    }),
    circuitState: new Gauge({
      name: 'switchyard_upstream_circuit_state',
      help: "Each connection's circuit: 0 closed, 1 open, 2 half-open, 3 isolated",
      labelNames: ['connection'],
      registers,
    }),
  };
}
