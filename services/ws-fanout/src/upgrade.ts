import { STATUS_CODES, type IncomingMessage, type Server } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Logger } from '@switchyard/service-runtime';
import { WebSocketServer } from 'ws';
import { errorBody, wsFanoutErrors, type WsFanoutErrorCode } from './errors.js';
import type { Hub } from './hub.js';
import { parseStreamQuery, STREAM_PATH } from './protocol.js';

export interface StreamEndpointOptions {
  readonly hub: Hub;
  /** Browser origins allowed to connect; `undefined` allows any. Requests without an Origin header always pass. */
  readonly allowedOrigins: readonly string[] | undefined;
  /** Largest client message; bigger ones close the connection with 1009. */
  readonly maxMessageBytes: number;
  readonly logger: Logger;
}

/** Answers an upgrade request with a plain HTTP error in the service's error shape and closes the socket. */
function refuse(socket: Duplex, status: number, code: WsFanoutErrorCode | 'RT_NOT_FOUND', message: string): void {
  const body = JSON.stringify(errorBody(code, message));
  socket.once('finish', () => socket.destroy());
  socket.end(
    `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ''}\r\n` +
      'Connection: close\r\n' +
      'Content-Type: application/json; charset=utf-8\r\n' +
      `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
  );
}

function remoteOf(request: IncomingMessage): string {
  return `${request.socket.remoteAddress ?? '?'}:${request.socket.remotePort ?? '?'}`;
}

/**
 * Serves `GET /v1/stream` upgrades on the HTTP server (the fastify app's). Upgrades to other paths get 404, during
 * shutdown 503, from an origin not allowed 403; the `ws` library answers malformed handshakes with 400.
 */
export function attachStreamEndpoint(server: Server, options: StreamEndpointOptions): void {
  const wss = new WebSocketServer({
    noServer: true,
    clientTracking: false,
    perMessageDeflate: false,
    maxPayload: options.maxMessageBytes,
  });
  const allowed = options.allowedOrigins === undefined ? undefined : new Set(options.allowedOrigins);

  server.on('upgrade', (request: IncomingMessage, socket: Duplex, head: Buffer) => {
    // A peer that resets the connection mid-handshake must not become an uncaught 'error'.
    socket.on('error', (error) => options.logger.debug({ err: error }, 'upgrade socket error'));
    const url = new URL(request.url ?? '/', 'http://localhost');
    if (url.pathname !== STREAM_PATH) {
      refuse(socket, 404, 'RT_NOT_FOUND', `no WebSocket endpoint at ${url.pathname}; use ${STREAM_PATH}`);
      return;
    }
    if (options.hub.isStopping) {
      refuse(socket, 503, 'WS_SHUTTING_DOWN', 'the server is shutting down; connect to another instance');
      return;
    }
    const origin = request.headers.origin;
    if (allowed !== undefined && origin !== undefined && !allowed.has(origin)) {
      refuse(socket, wsFanoutErrors.WS_ORIGIN_FORBIDDEN.http, 'WS_ORIGIN_FORBIDDEN', `origin ${origin} is not allowed`);
      return;
    }
    const initial = parseStreamQuery(url.searchParams);
    wss.handleUpgrade(request, socket, head, (websocket) => {
      options.hub.accept(websocket, { remote: remoteOf(request), initial });
    });
  });
}
