import {
  createServiceApp,
  type FastifyInstance,
  type ServiceAppOptions,
} from '@switchyard/service-runtime';
import type { HealthMonitor } from './monitor.js';

export interface AppDeps extends ServiceAppOptions {
  readonly monitor: Pick<HealthMonitor, 'snapshot'>;
}

/** Ops endpoints plus `GET /v1/health`: every probed API's current status. */
export function buildApp(deps: AppDeps): FastifyInstance {
  const app = createServiceApp(deps);
  app.get('/v1/health', async () => ({ apis: deps.monitor.snapshot() }));
  return app;
}
