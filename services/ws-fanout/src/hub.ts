import type { Principal } from '@switchyard/auth';
import type { Logger, Registry } from '@switchyard/service-runtime';
import { Counter, Gauge, Histogram } from 'prom-client';
import { WebSocket, type RawData } from 'ws';
import type { WsFanoutConfig } from './config.js';
import { closeCodeOf, WsFanoutError, type WsFanoutErrorCode } from './errors.js';
import { compileFilter, type EventMatcher, type MatchableEvent } from './filter.js';
import {
  closeReason,
  DEFAULT_SUBSCRIPTION_ID,
  EventFrames,
  parseClientMessage,
  serverMessages,
  type Filter,
  type Parsed,
} from './protocol.js';

/** The hub's limits from the service's configuration. */
export function hubOptions(config: WsFanoutConfig, logger: Logger, registry: Registry): HubOptions {
  return {
    maxBufferedBytes: config.WS_MAX_BUFFERED_BYTES,
    maxSubscriptions: config.WS_MAX_SUBSCRIPTIONS,
    maxConnections: config.WS_MAX_CONNECTIONS,
    pingIntervalMs: config.WS_PING_INTERVAL_MS,
    closeTimeoutMs: config.WS_CLOSE_TIMEOUT_MS,
    logger,
    registry,
  };
}

export interface HubOptions {
  /** A connection whose unsent bytes would exceed this is closed with 4008 instead of buffered further. */
  readonly maxBufferedBytes: number;
  readonly maxSubscriptions: number;
  readonly maxConnections: number;
  readonly pingIntervalMs: number;
  /** How long a closing connection gets to finish the close handshake before its TCP connection is dropped. */
  readonly closeTimeoutMs: number;
  readonly logger: Logger;
  readonly registry: Registry;
}

interface Subscription {
  readonly id: string;
  readonly matches: EventMatcher;
}

interface Connection {
  readonly id: number;
  readonly socket: WebSocket;
  readonly remote: string;
  /** The key the connection was opened with; its scopes are checked once per event, before any filter. */
  readonly principal: Principal;
  readonly subscriptions: Map<string, Subscription>;
  /** A ping went out and no pong has come back yet. */
  awaitingPong: boolean;
  /** Why the server is closing this connection; set once, and from then on nothing more is sent. */
  closing: WsFanoutErrorCode | undefined;
  /** The library-level error that made `ws` close the connection (bad UTF-8, frame too big, bad framing). */
  protocolError: WsFanoutErrorCode | undefined;
  closeTimer: NodeJS.Timeout | undefined;
}

export interface AcceptContext {
  readonly remote: string;
  /** The key the upgrade presented; it limits what every subscription of the connection sees. */
  readonly principal: Principal;
  /** The filter of the `default` subscription from the query string, `undefined` for none, or why it is invalid. */
  readonly initial: Parsed<Filter | undefined>;
}

/** `ws` error codes (https://github.com/websockets/ws/blob/master/doc/ws.md#error-codes) → ours. */
function protocolErrorCode(error: Error): WsFanoutErrorCode | undefined {
  const code = (error as { code?: unknown }).code;
  if (typeof code !== 'string' || !code.startsWith('WS_ERR_')) return undefined;
  if (code === 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH') return 'WS_MESSAGE_TOO_BIG';
  if (code === 'WS_ERR_INVALID_UTF8') return 'WS_INVALID_JSON';
  return 'WS_PROTOCOL_ERROR';
}

/** `WS_SLOW_CONSUMER` → `slow_consumer`: the `reason` label of the closed-connections metric. */
function reasonLabel(code: WsFanoutErrorCode): string {
  return code.slice(3).toLowerCase();
}

function toBuffer(data: RawData): Buffer {
  if (Buffer.isBuffer(data)) return data;
  if (Array.isArray(data)) return Buffer.concat(data);
  return Buffer.from(data);
}

const DELAY_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/**
 * Every open WebSocket connection and its subscriptions. `publish` hands one event to every matching subscription
 * of every connection; a connection that cannot keep up is closed rather than buffered for. All of it runs on the
 * event loop without awaiting, so a slow or misbehaving client never holds up the others.
 */
export class Hub {
  private readonly options: HubOptions;
  private readonly connections = new Set<Connection>();
  private nextId = 1;
  private heartbeat: NodeJS.Timeout | undefined;
  private stopping = false;
  private drained: (() => void) | undefined;

  private readonly framesSent: Counter<'op'>;
  private readonly eventFramesSent: Counter.Internal;
  private readonly bytesSent: Counter;
  private readonly closed: Counter<'reason'>;
  private readonly opened: Counter;
  private readonly deliveryDelay: Histogram;

  constructor(options: HubOptions) {
    this.options = options;
    const registers = [options.registry];
    const connectionsGauge: Gauge = new Gauge({
      name: 'switchyard_ws_connections',
      help: 'Open WebSocket connections',
      registers,
      collect: () => connectionsGauge.set(this.connections.size),
    });
    const subscriptionsGauge: Gauge = new Gauge({
      name: 'switchyard_ws_subscriptions',
      help: 'Open subscriptions over all connections',
      registers,
      collect: () => {
        let open = 0;
        for (const connection of this.connections) open += connection.subscriptions.size;
        subscriptionsGauge.set(open);
      },
    });
    this.opened = new Counter({ name: 'switchyard_ws_connections_opened_total', help: 'Accepted WebSocket connections', registers });
    this.closed = new Counter({
      name: 'switchyard_ws_connections_closed_total',
      help: 'Closed WebSocket connections by reason (client_closed, connection_lost, or the WS_ code in lower case when the server closes)',
      labelNames: ['reason'],
      registers,
    });
    this.framesSent = new Counter({
      name: 'switchyard_ws_frames_sent_total',
      help: 'Frames handed to client sockets, by op',
      labelNames: ['op'],
      registers,
    });
    this.eventFramesSent = this.framesSent.labels('event');
    this.bytesSent = new Counter({ name: 'switchyard_ws_sent_bytes_total', help: 'Payload bytes of the frames sent', registers });
    this.deliveryDelay = new Histogram({
      name: 'switchyard_ws_delivery_delay_seconds',
      help: 'From receiving an event from Kafka to its frame being written to a client socket',
      buckets: DELAY_BUCKETS,
      registers,
    });
  }

  get isStopping(): boolean {
    return this.stopping;
  }

  /** Starts the heartbeat: every interval each connection is pinged, and one that missed the last pong is dropped. */
  start(): void {
    this.heartbeat ??= setInterval(() => this.beat(), this.options.pingIntervalMs);
    this.heartbeat.unref();
  }

  /** Takes over an upgraded connection. */
  accept(socket: WebSocket, context: AcceptContext): void {
    const connection: Connection = {
      id: this.nextId++,
      socket,
      remote: context.remote,
      principal: context.principal,
      subscriptions: new Map(),
      awaitingPong: false,
      closing: undefined,
      protocolError: undefined,
      closeTimer: undefined,
    };
    const atCapacity = this.connections.size >= this.options.maxConnections;
    this.connections.add(connection);
    this.opened.inc();
    socket.on('message', (data, isBinary) => this.onMessage(connection, data, isBinary));
    socket.on('pong', () => {
      connection.awaitingPong = false;
    });
    socket.on('error', (error) => {
      connection.protocolError ??= protocolErrorCode(error);
      this.options.logger.debug({ connection: connection.id, err: error }, 'websocket error');
    });
    socket.on('close', (code) => this.onClose(connection, code));
    this.options.logger.debug({ connection: connection.id, remote: connection.remote, keyId: context.principal.keyId }, 'client connected');

    if (this.stopping) {
      this.close(connection, 'WS_SHUTTING_DOWN', 'server shutting down');
    } else if (atCapacity) {
      this.close(connection, 'WS_TOO_MANY_CONNECTIONS', `too many connections (max ${this.options.maxConnections})`);
    } else if (!context.initial.ok) {
      this.reject(connection, context.initial.error);
    } else if (context.initial.value !== undefined) {
      this.subscribe(connection, DEFAULT_SUBSCRIPTION_ID, context.initial.value, 'types');
    }
  }

  /**
   * Closes every open connection opened with the key, with 4401 WS_KEY_REVOKED (call it when the key store sees
   * the revocation). Returns how many were closed.
   */
  revoke(keyId: string): number {
    let closed = 0;
    for (const connection of this.connections) {
      if (connection.principal.keyId !== keyId || connection.closing !== undefined) continue;
      this.close(connection, 'WS_KEY_REVOKED', `key ${keyId} was revoked`);
      closed += 1;
    }
    return closed;
  }

  /**
   * Sends one event to every subscription it matches whose connection's key may stream its type: one frame per
   * such subscription. Returns the number of frames sent. `receivedAt` (performance.now()) is when the event came
   * from Kafka, for the delay metric.
   */
  publish(event: MatchableEvent, receivedAt: number): number {
    let frames: EventFrames | undefined;
    let onSent: ((error?: Error) => void) | undefined;
    let sent = 0;
    for (const connection of this.connections) {
      if (connection.closing !== undefined || connection.subscriptions.size === 0 || !connection.principal.grants.mayStream(event.type)) continue;
      for (const subscription of connection.subscriptions.values()) {
        if (!subscription.matches(event)) continue;
        frames ??= new EventFrames(event);
        onSent ??= (error) => {
          if (!error) this.deliveryDelay.observe((performance.now() - receivedAt) / 1000);
        };
        if (!this.send(connection, frames.for(subscription.id), onSent)) break;
        this.eventFramesSent.inc();
        sent += 1;
      }
    }
    return sent;
  }

  /**
   * Shutdown: refuses new connections, closes every open one with 1001 and waits until they are gone (those that
   * do not finish the close handshake in time are dropped).
   */
  async closeAll(): Promise<void> {
    this.stopping = true;
    clearInterval(this.heartbeat);
    this.heartbeat = undefined;
    if (this.connections.size === 0) return;
    const drained = new Promise<void>((resolve) => {
      this.drained = resolve;
    });
    for (const connection of this.connections) this.close(connection, 'WS_SHUTTING_DOWN', 'server shutting down');
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, this.options.closeTimeoutMs + 1000);
    });
    await Promise.race([drained, timeout]);
    clearTimeout(timer);
    for (const connection of this.connections) connection.socket.terminate();
  }

  private beat(): void {
    for (const connection of this.connections) {
      if (connection.closing !== undefined || connection.socket.readyState !== WebSocket.OPEN) continue;
      if (connection.awaitingPong) {
        this.close(connection, 'WS_HEARTBEAT_TIMEOUT', 'no pong');
        continue;
      }
      connection.awaitingPong = true;
      connection.socket.ping();
    }
  }

  private onMessage(connection: Connection, data: RawData, isBinary: boolean): void {
    if (connection.closing !== undefined) return;
    try {
      const parsed = parseClientMessage(toBuffer(data), isBinary);
      if (!parsed.ok) {
        this.reject(connection, parsed.error);
        return;
      }
      const message = parsed.value;
      switch (message.op) {
        case 'subscribe':
          this.subscribe(connection, message.id, message.filter ?? {}, 'filter.types');
          return;
        case 'unsubscribe':
          connection.subscriptions.delete(message.id);
          this.sendControl(connection, 'unsubscribed', serverMessages.unsubscribed(message.id));
          return;
        case 'ping':
          this.sendControl(connection, 'pong', serverMessages.pong());
          return;
        default: {
          const unreachable: never = message;
          throw new Error(`unhandled message ${JSON.stringify(unreachable)}`);
        }
      }
    } catch (error) {
      this.options.logger.error({ connection: connection.id, err: error }, 'handling a client message failed');
      this.close(connection, 'WS_INTERNAL', 'internal error');
    }
  }

  /**
   * Opens a subscription, unless its id is taken, the connection has too many, or one of its `types` is not
   * within the key's `stream:` scopes (`typesField` names the field in the refusal: `filter.types` or, for the
   * query string, `types`). Without `types` it is open too: events outside the scopes are left out in `publish`.
   */
  private subscribe(connection: Connection, id: string, filter: Filter, typesField: string): void {
    if (connection.subscriptions.has(id)) {
      this.reject(
        connection,
        new WsFanoutError('WS_DUPLICATE_SUBSCRIPTION', `id: subscription "${id}" is already open`, { details: { field: 'id' } }),
      );
      return;
    }
    if (connection.subscriptions.size >= this.options.maxSubscriptions) {
      this.reject(
        connection,
        new WsFanoutError('WS_TOO_MANY_SUBSCRIPTIONS', `id: at most ${this.options.maxSubscriptions} subscriptions per connection`, {
          details: { field: 'id' },
        }),
      );
      return;
    }
    const { grants, keyId } = connection.principal;
    const types = filter.types ?? [];
    const outside = types.findIndex((entry) => !grants.mayStreamPattern(entry));
    if (outside >= 0) {
      const field = `${typesField}[${outside}]`;
      this.reject(
        connection,
        new WsFanoutError('WS_SCOPE_MISSING', `${field}: ${types[outside] ?? ''} is outside the stream: scopes of key ${keyId}`, {
          details: { field },
        }),
      );
      return;
    }
    connection.subscriptions.set(id, { id, matches: compileFilter(filter) });
    this.sendControl(connection, 'subscribed', serverMessages.subscribed(id));
  }

  /** Bad input: an `error` frame with the whole message, then the close code with the (shortened) message. */
  private reject(connection: Connection, error: WsFanoutError): void {
    this.sendControl(connection, 'error', serverMessages.error(error));
    this.close(connection, error.code, error.message);
  }

  private sendControl(connection: Connection, op: string, text: string): void {
    const frame = Buffer.from(text, 'utf8');
    if (this.send(connection, frame)) this.framesSent.inc({ op });
  }

  /**
   * Queues a frame unless the connection is closing or too slow: when frames already wait in its buffer and this
   * one would take it past `maxBufferedBytes`, the connection is closed with 4008 and nothing more is queued. A
   * frame on an empty buffer always goes, so one event larger than the limit does not cut everyone off.
   */
  private send(connection: Connection, frame: Buffer, onSent?: (error?: Error) => void): boolean {
    const { socket } = connection;
    if (connection.closing !== undefined || socket.readyState !== WebSocket.OPEN) return false;
    const buffered = socket.bufferedAmount;
    if (buffered > 0 && buffered + frame.length > this.options.maxBufferedBytes) {
      this.close(connection, 'WS_SLOW_CONSUMER', `too slow: over ${this.options.maxBufferedBytes} bytes waiting`);
      return false;
    }
    socket.send(frame, { binary: false }, onSent);
    this.bytesSent.inc(frame.length);
    return true;
  }

  /**
   * Closes with the code's close code and the reason (cut to 123 bytes), or drops the TCP connection for codes
   * without one. A close handshake that does not finish within `closeTimeoutMs` is cut short the same way.
   */
  private close(connection: Connection, code: WsFanoutErrorCode, reason: string): void {
    if (connection.closing !== undefined) return;
    connection.closing = code;
    // Counted when decided: a client too slow to read its close frame may take closeTimeoutMs to be gone.
    this.closed.inc({ reason: reasonLabel(code) });
    const { socket } = connection;
    const closeCode = closeCodeOf(code);
    const level = code === 'WS_SHUTTING_DOWN' ? 'debug' : 'info';
    this.options.logger[level]({ connection: connection.id, remote: connection.remote, code, closeCode, reason }, 'closing client');
    if (closeCode === null) {
      socket.terminate();
      return;
    }
    socket.close(closeCode, closeReason(reason));
    connection.closeTimer = setTimeout(() => socket.terminate(), this.options.closeTimeoutMs);
    connection.closeTimer.unref();
  }

  private onClose(connection: Connection, code: number): void {
    clearTimeout(connection.closeTimer);
    if (!this.connections.delete(connection)) return;
    connection.subscriptions.clear();
    if (connection.closing === undefined) {
      const { protocolError } = connection;
      const reason = protocolError !== undefined ? reasonLabel(protocolError) : code === 1006 ? 'connection_lost' : 'client_closed';
      this.closed.inc({ reason });
    }
    this.options.logger.debug({ connection: connection.id, code, closing: connection.closing }, 'client disconnected');
    if (this.connections.size === 0) this.drained?.();
  }
}
