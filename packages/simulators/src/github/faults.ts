import { z } from 'zod';

/**
 * Faults the tests inject into the GitHub surface: answer the next N matching requests with an error status (or
 * drop their connection), before or after the request takes effect; slow every request down; or take the whole
 * API down.
 */

export const FaultSpec = z.strictObject({
  /** An HTTP status to answer with, or `destroy` to close the connection without an answer. */
  response: z.union([z.number().int().min(400).max(599), z.literal('destroy')]),
  /** How many matching requests get the fault. */
  count: z.number().int().min(1).default(1),
  /**
   * `before`: the request has no effect (the usual 5xx). `after`: it takes effect and then the answer is lost —
   * the ambiguous outcome a client cannot tell from `before`.
   */
  when: z.enum(['before', 'after']).default('before'),
  /** Sent as `retry-after` (seconds) with status answers. */
  retryAfterSeconds: z.number().int().min(0).optional(),
  /** Only requests with this method (any when absent). */
  method: z.string().toUpperCase().optional(),
  /** Only requests to this route, in GitHub's notation: `/repos/{owner}/{repo}/issues` (any when absent). */
  route: z.string().startsWith('/').optional(),
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

  /** The fault the request matching `method` and `route` gets, if any; uses one of its count. */
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
