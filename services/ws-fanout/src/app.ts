import {
  createServiceApp,
  type ErrorBody,
  type FastifyInstance,
  type ServiceAppOptions,
} from '@switchyard/service-runtime';
import { wsFanoutErrors } from './errors.js';
import { STREAM_PATH } from './protocol.js';
import { attachStreamEndpoint, type StreamEndpointOptions } from './upgrade.js';

export interface AppDeps extends ServiceAppOptions {
  readonly stream: Omit<StreamEndpointOptions, 'logger'>;
}

/**
 * Ops endpoints plus the WebSocket endpoint `GET /v1/stream`. Upgrades are taken off the HTTP server before
 * fastify routes them; a plain GET of the same path reaches the route below and is told to upgrade.
 */
export function buildApp(deps: AppDeps): FastifyInstance {
  const app = createServiceApp(deps);
  app.get(STREAM_PATH, async (_request, reply) => {
    const body: ErrorBody = {
      error: {
        code: 'WS_UPGRADE_REQUIRED',
        message: `${STREAM_PATH} is a WebSocket endpoint; connect with a WebSocket client`,
        retriable: wsFanoutErrors.WS_UPGRADE_REQUIRED.retriable,
      },
    };
    return reply.code(426).header('upgrade', 'websocket').send(body);
  });
  attachStreamEndpoint(app.server, { ...deps.stream, logger: deps.logger });
  return app;
}
