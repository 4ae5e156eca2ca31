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

  /** Connects and waits for the `?types=` subscription to be confirmed. */
  static async subscribe(url: string): Promise<StreamClient> {
    const socket = new WebSocket(url);
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

  async waitFor(predicate: (frame: Frame) => boolean, timeoutMs = 15000): Promise<TimedFrame> {
    return waitFor(() => this.frames.find((timed) => predicate(timed.frame)), { timeoutMs, what: 'a matching WebSocket frame' });
  }

  close(): void {
    this.socket.terminate();
  }
}
