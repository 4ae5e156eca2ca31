import type { FastifyInstance, FastifyRequest } from 'fastify';
import { type Authenticator, type Principal } from './authenticate.js';
import { AuthError, bearerChallenge } from './errors.js';
import type { Requirement } from './scopes.js';

/** What a route declares in `config.auth`: the requirement its callers must meet. */
export type RouteAuth = Requirement;

declare module 'fastify' {
  interface FastifyContextConfig {
    auth?: RouteAuth;
  }
  interface FastifyRequest {
    principal: Principal | undefined;
  }
}

/** A route as the guard saw it registered. */
interface GuardedRoute {
  readonly method: string;
  readonly url: string;
  /** Undefined for the open ops endpoints. */
  readonly auth: RouteAuth | undefined;
}

/** The only routes without a key: liveness, readiness and metrics (they reveal no entity data and no keys). */
const OPEN_ROUTES: readonly string[] = ['/healthz', '/readyz', '/metrics'];

/** The principal of a request that passed the guard. */
export function principalOf(request: FastifyRequest): Principal {
  const { principal } = request;
  if (principal === undefined) throw new Error(`no principal on ${request.method} ${request.url}: the route is not guarded`);
  return principal;
}

/**
 * Guards an app: every route must declare `config.auth` (a route registered without one throws at startup, so
 * none is forgotten) except the ops endpoints; each request to it must present a valid key that meets the
 * requirement (401 / 403 otherwise, with `WWW-Authenticate` on 401). A request for no route needs a valid key
 * too, so unknown paths are not told apart from known ones without one. Call it before registering routes. When
 * the app is ready it logs its route table (`routes`, each with `method`, `url` and `auth`).
 */
export function guard(app: FastifyInstance, authenticator: Authenticator): void {
  const routes: GuardedRoute[] = [];
  app.decorateRequest('principal', undefined);
  app.addHook('onRoute', (route) => {
    const methods = Array.isArray(route.method) ? route.method : [route.method];
    const open = OPEN_ROUTES.includes(route.url);
    const auth = route.config?.auth;
    if (!open && auth === undefined) throw new Error(`route ${methods.join(',')} ${route.url} declares no config.auth requirement`);
    for (const method of methods) routes.push({ method, url: route.url, auth: open ? undefined : auth });
  });
  // The route table, once: what every route needs, for operators and for the tests that try each route.
  app.addHook('onReady', async () => {
    app.log.info({ routes: routes.filter((route) => route.method !== 'HEAD') }, 'routes');
  });
  app.addHook('onRequest', async (request, reply) => {
    const requirement = request.routeOptions.config.auth;
    if (requirement === undefined && OPEN_ROUTES.includes(request.routeOptions.url ?? '')) return;
    try {
      request.principal = authenticator.fromHeaders(request.headers);
    } catch (error) {
      if (error instanceof AuthError && error.httpStatus === 401) {
        void reply.header('www-authenticate', bearerChallenge(error));
      }
      throw error;
    }
    if (requirement !== undefined && !request.principal.grants.meets(requirement)) {
      throw new AuthError('AUTH_SCOPE_MISSING', `key ${request.principal.keyId} lacks the scope ${describeRequirement(requirement)}`);
    }
  });
}

/** The scope a requirement asks for, as a message names it. */
export function describeRequirement(requirement: Requirement): string {
  switch (requirement) {
    case 'commands:send':
      return 'commands:send:<type pattern>';
    case 'stream':
      return 'stream:<type pattern>';
    default:
      return requirement;
  }
}
