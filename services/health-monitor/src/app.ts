import {
  createServiceApp,
  type FastifyInstance,
  type ServiceAppOptions,
} from '@switchyard/service-runtime';
import type { HealthMonitor } from './monitor.js';

export interface AppDeps extends ServiceAppOptions {
  readonly monitor: Pick<HealthMonitor, 'snapshot'>;
}

/**
 * Ops endpoints plus `GET /v1/health`: every probed API's current status, for keys with `health:read` (or admin;
 * the guard passed in `deps.guard` checks every request but the ops endpoints).
 */
export function buildApp(deps: AppDeps): FastifyInstance {
  const app = createServiceApp(deps);
  app.get('/v1/health', { config: { auth: 'health:read' } }, async () => ({ apis: deps.monitor.snapshot() }));
  return app;
}
