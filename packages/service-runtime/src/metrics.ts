import { collectDefaultMetrics, Registry } from 'prom-client';

/** A Prometheus registry with the process metrics (CPU, memory, event-loop lag, GC) and a `service` label. */
export function createMetricsRegistry(service: string): Registry {
  const registry = new Registry();
  registry.setDefaultLabels({ service });
  collectDefaultMetrics({ register: registry });
  return registry;
}

export type { Registry };
