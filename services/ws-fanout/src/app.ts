import type { ServiceAuth } from '@switchyard/auth';
import { createServiceApp, type FastifyInstance, type ServiceAppOptions } from '@switchyard/service-runtime';
import type { WsFanoutConfig } from './config.js';
import { errorBody, wsFanoutErrors } from './errors.js';
import type { Hub } from './hub.js';
import { STREAM_PATH } from './protocol.js';
import { attachStreamEndpoint, type StreamEndpointOptions } from './upgrade.js';

export interface AppDeps extends Omit<ServiceAppOptions, 'guard'> {
  /** The service's keys: the guard of the HTTP routes, the authenticator of upgrades, the store's revocations. */
  readonly auth: Pick<ServiceAuth, 'guard' | 'authenticator' | 'store'>;
  readonly stream: Omit<StreamEndpointOptions, 'logger' | 'authenticator'>;
}

/**
 * Ops endpoints plus the WebSocket endpoint `GET /v1/stream`. Upgrades are taken off the HTTP server before
 * fastify routes them (and check the key themselves); a plain GET of the same path reaches the guarded route below
 * and is told to upgrade. A revoked key's open connections are closed as soon as the key store has the revocation.
 */
export function buildApp(deps: AppDeps): FastifyInstance {
  const { auth, stream } = deps;
  const app = createServiceApp({ ...deps, guard: auth.guard });
  app.get(STREAM_PATH, { config: { auth: 'stream' } }, async (_request, reply) => {
    const body = errorBody('WS_UPGRADE_REQUIRED', `${STREAM_PATH} is a WebSocket endpoint; connect with a WebSocket client`);
    return reply.code(wsFanoutErrors.WS_UPGRADE_REQUIRED.http).header('upgrade', 'websocket').send(body);
  });
  attachStreamEndpoint(app.server, { ...stream, authenticator: auth.authenticator, logger: deps.logger });
  auth.store.onChange((key) => {
    if (key.record.revokedAt !== undefined) stream.hub.revoke(key.record.keyId);
  });
  return app;
}

/** The stream endpoint's settings from the service's configuration. */
export function streamOptions(config: WsFanoutConfig, hub: Hub): AppDeps['stream'] {
  return { hub, allowedOrigins: config.WS_ALLOWED_ORIGINS, maxMessageBytes: config.WS_MAX_MESSAGE_BYTES };
}
