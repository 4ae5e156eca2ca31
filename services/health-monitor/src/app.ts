import {
  createHttpServer,
  registerOps,
  type FastifyInstance,
  type Logger,
  type ReadinessCheck,
  type Registry,
} from '@switchyard/service-runtime';
import type { HealthMonitor } from './monitor.js';

export interface AppDeps {
  readonly logger: Logger;
  readonly monitor: Pick<HealthMonitor, 'snapshot'>;
  readonly checks: readonly ReadinessCheck[];
  readonly registry: Registry;
  readonly isStopping: () => boolean;
}

/** Ops endpoints plus `GET /v1/health`: every probed API's current status. */
export function buildApp(deps: AppDeps): FastifyInstance {
  const app = createHttpServer({ logger: deps.logger, isStopping: deps.isStopping });
  registerOps(app, { checks: deps.checks, registry: deps.registry, isStopping: deps.isStopping });
  app.get('/v1/health', async () => ({ apis: deps.monitor.snapshot() }));
  return app;
}
