import {
  createServiceApp,
  type FastifyInstance,
  type ServiceAppOptions,
} from '@switchyard/service-runtime';
import type pg from 'pg';
import { readOffsets } from './offsets.js';

export interface AppDeps extends ServiceAppOptions {
  readonly pool: pg.Pool;
}

/**
 * Ops endpoints plus `GET /v1/positions`: every projection's stored consumer position per partition, for admin
 * keys only (the guard passed in `deps.guard` checks every request but the ops endpoints).
 */
export function buildApp(deps: AppDeps): FastifyInstance {
  const app = createServiceApp(deps);
  app.get('/v1/positions', { config: { auth: 'admin' } }, async () => ({
    positions: (await readOffsets(deps.pool)).map((row) => ({ ...row, nextOffset: row.nextOffset.toString() })),
  }));
  return app;
}
