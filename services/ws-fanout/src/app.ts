import { createServiceApp, type FastifyInstance, type ServiceAppOptions } from '@switchyard/service-runtime';
import type { WsFanoutConfig } from './config.js';
import { errorBody, wsFanoutErrors } from './errors.js';
import type { Hub } from './hub.js';
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
    const body = errorBody('WS_UPGRADE_REQUIRED', `${STREAM_PATH} is a WebSocket endpoint; connect with a WebSocket client`);
    return reply.code(wsFanoutErrors.WS_UPGRADE_REQUIRED.http).header('upgrade', 'websocket').send(body);
  });
  attachStreamEndpoint(app.server, { ...deps.stream, logger: deps.logger });
  return app;
}

/** The stream endpoint's settings from the service's configuration. */
export function streamOptions(config: WsFanoutConfig, hub: Hub): AppDeps['stream'] {
  return { hub, allowedOrigins: config.WS_ALLOWED_ORIGINS, maxMessageBytes: config.WS_MAX_MESSAGE_BYTES };
}
