import { z } from 'zod';

/**
 * Faults the tests inject into the GitHub surface: answer the next N matching requests with an error status, drop
 * their connection, or hold their answer back — before or after the request takes effect; slow every request down;
 * or take the whole API down.
 */

/** The longest delay a fault (or the global latency) may hold a request: ten minutes. */
export const MAX_DELAY_MS = 600000;

export const FaultSpec = z
  .strictObject({
    /**
     * An HTTP status to answer with; `destroy` to close the connection without an answer; or `stall` to answer
     * normally but only after `delayMs` (see `when` for what a stall does to the request).
     */
    response: z.union([z.number().int().min(400).max(599), z.literal('destroy'), z.literal('stall')]),
    /** How many matching requests get the fault. */
    count: z.number().int().min(1).default(1),
    /**
     * `before`: the request has no effect (the usual 5xx). `after`: it takes effect and then the answer is lost,
     * replaced or late — the ambiguous outcome a client cannot tell from `before`.
     *
     * For `stall`: `after` applies the request at once and sends its normal answer `delayMs` later (a client may
     * have timed out by then). `before` waits `delayMs`, then carries the request out and answers normally — unless
     * `delayMs` is longer than the simulator's server timeout: then, as GitHub does, the request is terminated at the
     * server timeout without effect and answered with GitHub's timeout answer.
     */
    when: z.enum(['before', 'after']).default('before'),
    /**
     * Milliseconds to hold the answer back. Required for `stall`. For a status or `destroy` fault: wait this long
     * before answering (or dropping the connection); with `after`, the request has taken effect before the wait.
     */
    delayMs: z.number().int().min(0).max(MAX_DELAY_MS).optional(),
    /** Sent as `retry-after` (seconds) with status answers. */
    retryAfterSeconds: z.number().int().min(0).optional(),
    /** Only requests with this method (any when absent). */
    method: z.string().toUpperCase().optional(),
    /** Only requests to this route, in GitHub's notation: `/repos/{owner}/{repo}/issues` (any when absent). */
    route: z.string().startsWith('/').optional(),
  })
  .refine((fault) => fault.response !== 'stall' || fault.delayMs !== undefined, {
    path: ['delayMs'],
    message: 'required when response is "stall"',
  });
export type FaultSpec = z.input<typeof FaultSpec>;
export type Fault = z.output<typeof FaultSpec>;

/** `up`: normal. `unavailable`: 503 to everything. `destroy`: every connection is closed without an answer. */
export const SimMode = z.enum(['up', 'unavailable', 'destroy']);
export type SimMode = z.infer<typeof SimMode>;

export class FaultInjector {
  private queue: { fault: Fault; left: number }[] = [];
  mode: SimMode = 'up';
  latencyMs = 0;

  add(spec: FaultSpec): Fault {
    const fault = FaultSpec.parse(spec);
    this.queue.push({ fault, left: fault.count });
    return fault;
  }

  /**
   * The fault the request matching `method` and `route` gets, if any; uses one of its count. Synchronous, so
   * concurrent requests each take their own use: a fault with `count: N` meets N requests in flight.
   */
  take(method: string, route: string, when: Fault['when']): Fault | undefined {
    const entry = this.queue.find(
      ({ fault, left }) =>
        left > 0 &&
        fault.when === when &&
        (fault.method === undefined || fault.method === method.toUpperCase()) &&
        (fault.route === undefined || fault.route === route),
    );
    if (entry === undefined) return undefined;
    entry.left -= 1;
    this.queue = this.queue.filter(({ left }) => left > 0);
    return entry.fault;
  }

  /** Faults still waiting for a request, with how many uses each has left. */
  pending(): { fault: Fault; left: number }[] {
    return this.queue.map((entry) => ({ ...entry }));
  }

  clear(): void {
    this.queue = [];
    this.mode = 'up';
    this.latencyMs = 0;
  }
}
