import { waitFor } from '@switchyard/testkit';
import { WebSocket } from 'ws';

/** A server frame of ws-fanout's protocol (services/ws-fanout/README.md). */
export interface Frame {
  readonly op: string;
  readonly id?: string;
  readonly subscription?: string;
  readonly code?: string;
  readonly event?: {
    readonly id: string;
    readonly type: string;
    readonly subject?: string;
    readonly correlationid: string;
    readonly causationid?: string;
    readonly entityversion?: string;
    readonly data: Record<string, unknown>;
  };
}

export interface TimedFrame {
  readonly frame: Frame;
  /** performance.now() when it arrived. */
  readonly at: number;
}

/**
 * How a client presents its key on the upgrade: the Authorization header (servers, Node), or, where a client cannot
 * set headers (browsers), a `switchyard.bearer.<key>` subprotocol offered next to `switchyard.v1`.
 */
export type KeyTransport = 'header' | 'subprotocol';

function connect(url: string, key: string | undefined, via: KeyTransport): WebSocket {
  if (key === undefined) return new WebSocket(url);
  if (via === 'subprotocol') return new WebSocket(url, ['switchyard.v1', `switchyard.bearer.${key}`]);
  return new WebSocket(url, { headers: { authorization: `Bearer ${key}` } });
}

/** A WebSocket client of GET /v1/stream that keeps every frame with its arrival time. */
export class StreamClient {
  readonly frames: TimedFrame[] = [];
  readonly closed: Promise<{ code: number; reason: string }>;
  private readonly socket: WebSocket;

  private constructor(socket: WebSocket) {
    this.socket = socket;
    socket.on('message', (data: Buffer) => this.frames.push({ frame: JSON.parse(data.toString('utf8')) as Frame, at: performance.now() }));
    this.closed = new Promise((resolve) => socket.once('close', (code, reason) => resolve({ code, reason: reason.toString() })));
  }

  /** Connects with `key` and waits for the `?types=` subscription to be confirmed. */
  static async subscribe(url: string, key: string, options: { via?: KeyTransport } = {}): Promise<StreamClient> {
    const socket = connect(url, key, options.via ?? 'header');
    // Listen before 'open': the server confirms the subscription at once, and that frame can arrive in the same
    // chunk as the 101 response — ws then emits it before a continuation of the 'open' promise could listen.
    const client = new StreamClient(socket);
    await new Promise<void>((resolve, reject) => {
      socket.once('open', resolve);
      socket.once('error', reject);
    });
    await client.waitFor((frame) => frame.op === 'subscribed');
    return client;
  }

  /**
   * The answer to an upgrade with these headers: 101 when accepted (the socket is closed at once), else the HTTP
   * refusal's status, WWW-Authenticate header and JSON body.
   */
  static async upgrade(url: string, headers: Record<string, string> = {}): Promise<{ status: number; wwwAuthenticate: string | undefined; body: unknown }> {
    const socket = new WebSocket(url, { headers });
    return new Promise((resolve, reject) => {
      socket.once('unexpected-response', (_request, response) => {
        let text = '';
        response.setEncoding('utf8');
        response.on('data', (chunk: string) => (text += chunk));
        response.on('end', () => {
          let body: unknown = text;
          try {
            body = JSON.parse(text);
          } catch {
            // not JSON: kept as text
          }
          const header = response.headers['www-authenticate'];
          resolve({ status: response.statusCode ?? 0, wwwAuthenticate: Array.isArray(header) ? header.join(', ') : header, body });
          socket.terminate();
        });
      });
      socket.once('open', () => {
        socket.terminate();
        resolve({ status: 101, wwwAuthenticate: undefined, body: undefined });
      });
      // Also after the refusal: ending a handshake that was refused is reported as an error too.
      socket.on('error', (error) => reject(error));
    });
  }

  /** Tries to connect with `key` (or none) and expects the upgrade to be refused; rejects when it is accepted. */
  static async refusal(url: string, key?: string): Promise<{ status: number; wwwAuthenticate: string | undefined; body: unknown }> {
    const answer = await StreamClient.upgrade(url, key === undefined ? {} : { authorization: `Bearer ${key}` });
    if (answer.status === 101) throw new Error(`${url}: the upgrade was accepted`);
    return answer;
  }

  /** The subprotocol the server selected ('' when none was offered). */
  get protocol(): string {
    return this.socket.protocol;
  }

  async waitFor(predicate: (frame: Frame) => boolean, timeoutMs = 15000): Promise<TimedFrame> {
    return waitFor(() => this.frames.find((timed) => predicate(timed.frame)), { timeoutMs, what: 'a matching WebSocket frame' });
  }

  close(): void {
    this.socket.terminate();
  }
}
