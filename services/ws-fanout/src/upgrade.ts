import { STATUS_CODES, type IncomingMessage, type Server } from 'node:http';
import type { Duplex } from 'node:stream';
import { AuthError, BEARER_SUBPROTOCOL_PREFIX, bearerChallenge, describeRequirement, STREAM_SUBPROTOCOL, type Authenticator, type Principal } from '@switchyard/auth';
import type { ErrorBody, Logger } from '@switchyard/service-runtime';
import { WebSocketServer } from 'ws';
import { errorBody, wsFanoutErrors, type WsFanoutErrorCode } from './errors.js';
import type { Hub } from './hub.js';
import { parseStreamQuery, STREAM_PATH } from './protocol.js';

export interface StreamEndpointOptions {
  readonly hub: Hub;
  /** Checks the key an upgrade presents (the service's key store). */
  readonly authenticator: Pick<Authenticator, 'fromHeaders'>;
  /** Browser origins allowed to connect; `undefined` allows any. Requests without an Origin header always pass. */
  readonly allowedOrigins: readonly string[] | undefined;
  /** Largest client message; bigger ones close the connection with 1009. */
  readonly maxMessageBytes: number;
  readonly logger: Logger;
}

/** What a 401 says, as the HTTP routes' guard says it. */

/**
 * Answers an upgrade request with a plain HTTP error in the service's error shape and closes the socket. The body
 * is built from codes and messages that never contain the presented key.
 */
function refuse(socket: Duplex, status: number, body: ErrorBody, headers: Readonly<Record<string, string>> = {}): void {
  const text = JSON.stringify(body);
  socket.once('finish', () => socket.destroy());
  socket.end(
    `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ''}\r\n` +
      'Connection: close\r\n' +
      Object.entries(headers)
        .map(([name, value]) => `${name}: ${value}\r\n`)
        .join('') +
      'Content-Type: application/json; charset=utf-8\r\n' +
      `Content-Length: ${Buffer.byteLength(text)}\r\n\r\n${text}`,
  );
}

function authErrorBody(error: AuthError): ErrorBody {
  const body: ErrorBody = { error: { code: error.code, message: error.message, retriable: error.retriable } };
  const { field } = error;
  if (field !== undefined) body.error.field = field;
  return body;
}

function remoteOf(request: IncomingMessage): string {
  return `${request.socket.remoteAddress ?? '?'}:${request.socket.remotePort ?? '?'}`;
}

/** The entries of `Sec-WebSocket-Protocol`, trimmed (empty for none). */
function offeredProtocols(request: IncomingMessage): string[] {
  const header = request.headers['sec-websocket-protocol'];
  return header === undefined ? [] : header.split(',').map((entry) => entry.trim());
}

/**
 * Serves `GET /v1/stream` upgrades on the HTTP server (the fastify app's). Upgrades to other paths get 404, during
 * shutdown 503, from an origin not allowed 403. Then the key: presented as `Authorization: Bearer <key>` or as a
 * `switchyard.bearer.<key>` subprotocol (browsers cannot set headers; never in the URL, which ends up in access
 * logs). Without a valid, unrevoked key 401 with `WWW-Authenticate`, while keys are still loading 503, for a key
 * without a `stream:` scope 403; the `ws` library answers malformed handshakes with 400. When the client offers
 * `switchyard.v1` the server selects it; the bearer entry is never echoed.
 */
export function attachStreamEndpoint(server: Server, options: StreamEndpointOptions): void {
  const wss = new WebSocketServer({
    noServer: true,
    clientTracking: false,
    perMessageDeflate: false,
    maxPayload: options.maxMessageBytes,
    handleProtocols: (protocols) => (protocols.has(STREAM_SUBPROTOCOL) ? STREAM_SUBPROTOCOL : false),
  });
  const allowed = options.allowedOrigins === undefined ? undefined : new Set(options.allowedOrigins);

  const refuseWith = (
    request: IncomingMessage,
    socket: Duplex,
    status: number,
    code: WsFanoutErrorCode | 'RT_NOT_FOUND' | 'RT_INTERNAL',
    message: string,
  ): void => {
    options.logger.debug({ remote: remoteOf(request), status, code }, 'upgrade refused');
    refuse(socket, status, errorBody(code, message));
  };

  const authenticate = (request: IncomingMessage, socket: Duplex): Principal | undefined => {
    let principal: Principal;
    try {
      principal = options.authenticator.fromHeaders(request.headers, { subprotocol: true });
    } catch (error) {
      if (!(error instanceof AuthError) || error.httpStatus === undefined) throw error;
      options.logger.debug({ remote: remoteOf(request), status: error.httpStatus, code: error.code }, 'upgrade refused');
      refuse(socket, error.httpStatus, authErrorBody(error), error.httpStatus === 401 ? { 'WWW-Authenticate': bearerChallenge(error) } : {});
      return undefined;
    }
    if (!principal.grants.meets('stream')) {
      const error = new AuthError('AUTH_SCOPE_MISSING', `key ${principal.keyId} lacks the scope ${describeRequirement('stream')}`);
      options.logger.debug({ remote: remoteOf(request), keyId: principal.keyId, status: error.httpStatus, code: error.code }, 'upgrade refused');
      refuse(socket, error.httpStatus ?? 403, authErrorBody(error));
      return undefined;
    }
    return principal;
  };

  const upgrade = (request: IncomingMessage, socket: Duplex, head: Buffer): void => {
    const url = new URL(request.url ?? '/', 'http://localhost');
    if (url.pathname !== STREAM_PATH) {
      refuseWith(request, socket, 404, 'RT_NOT_FOUND', `no WebSocket endpoint at ${url.pathname}; use ${STREAM_PATH}`);
      return;
    }
    if (options.hub.isStopping) {
      refuseWith(request, socket, 503, 'WS_SHUTTING_DOWN', 'the server is shutting down; connect to another instance');
      return;
    }
    const origin = request.headers.origin;
    if (allowed !== undefined && origin !== undefined && !allowed.has(origin)) {
      refuseWith(request, socket, wsFanoutErrors.WS_ORIGIN_FORBIDDEN.http, 'WS_ORIGIN_FORBIDDEN', `origin ${origin} is not allowed`);
      return;
    }
    const principal = authenticate(request, socket);
    if (principal === undefined) return;
    const protocols = offeredProtocols(request);
    if (protocols.some((entry) => entry.startsWith(BEARER_SUBPROTOCOL_PREFIX)) && !protocols.includes(STREAM_SUBPROTOCOL)) {
      refuseWith(
        request,
        socket,
        wsFanoutErrors.WS_SUBPROTOCOL_REQUIRED.http,
        'WS_SUBPROTOCOL_REQUIRED',
        `Sec-WebSocket-Protocol: offer ${STREAM_SUBPROTOCOL} beside ${BEARER_SUBPROTOCOL_PREFIX}<key>`,
      );
      return;
    }
    const initial = parseStreamQuery(url.searchParams);
    wss.handleUpgrade(request, socket, head, (websocket) => {
      options.hub.accept(websocket, { remote: remoteOf(request), principal, initial });
    });
  };

  server.on('upgrade', (request: IncomingMessage, socket: Duplex, head: Buffer) => {
    // A peer that resets the connection mid-handshake must not become an uncaught 'error'.
    socket.on('error', (error) => options.logger.debug({ err: error }, 'upgrade socket error'));
    try {
      upgrade(request, socket, head);
    } catch (error) {
      // Headers are not logged: they may hold a key.
      options.logger.error({ remote: remoteOf(request), err: error }, 'handling an upgrade failed');
      if (socket.writable) refuseWith(request, socket, 500, 'RT_INTERNAL', 'internal error');
      else socket.destroy();
    }
  });
}
