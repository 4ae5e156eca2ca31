import {
  createHttpServer,
  registerOps,
  type FastifyInstance,
  type Logger,
  type ReadinessCheck,
  type Registry,
} from '@switchyard/service-runtime';
import type pg from 'pg';
import { readOffsets } from './offsets.js';

export interface AppDeps {
  readonly logger: Logger;
  readonly pool: pg.Pool;
  readonly checks: readonly ReadinessCheck[];
  readonly registry: Registry;
  readonly isStopping: () => boolean;
}

/** Ops endpoints plus `GET /v1/positions`: every projection's stored consumer position per partition. */
export function buildApp(deps: AppDeps): FastifyInstance {
  const app = createHttpServer({ logger: deps.logger, isStopping: deps.isStopping });
  registerOps(app, { checks: deps.checks, registry: deps.registry, isStopping: deps.isStopping });
  app.get('/v1/positions', async () => ({
    positions: (await readOffsets(deps.pool)).map((row) => ({ ...row, nextOffset: row.nextOffset.toString() })),
  }));
  return app;
}
