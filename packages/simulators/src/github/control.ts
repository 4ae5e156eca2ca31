import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { FaultSpec, MAX_DELAY_MS, SimMode } from './faults.js';
import type { GithubSimulatorControl } from './simulator.js';

/**
 * The test-control API under `/_sim`, kept apart from the GitHub surface: no auth, no rate limit, not counted,
 * never faulted. Every route calls the same in-process control the tests use.
 */

const Name = z.string().regex(/^[A-Za-z0-9_.-]{1,100}$/, 'letters, digits, ".", "-" and "_" only');
const AddRepo = z.strictObject({ owner: Name, name: Name, collaborators: z.array(z.string().min(1)).optional() });
const PullRequest = z.strictObject({ title: z.string().min(1), body: z.string().optional(), login: z.string().min(1).optional() });
const Mode = z.strictObject({ mode: SimMode });
const Latency = z.strictObject({ ms: z.number().int().min(0).max(MAX_DELAY_MS) });
const RateLimit = z.strictObject({
  token: z.string().min(1),
  limit: z.number().int().min(0).optional(),
  remaining: z.number().int().min(0).optional(),
  resetInSeconds: z.number().int().min(0).optional(),
});
const RateLimitReset = z.strictObject({ token: z.string().min(1).optional() }).optional();

class ControlInputError extends Error {
  readonly field: string;

  constructor(field: string, message: string) {
    super(`${field || 'body'}: ${message}`);
    this.field = field;
  }
}

function parse<S extends z.ZodType>(schema: S, value: unknown): z.output<S> {
  const parsed = schema.safeParse(value);
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0];
  const field = (issue?.path ?? []).map(String).join('.');
  throw new ControlInputError(field, issue?.message ?? 'invalid');
}

export function registerControlRoutes(
  sim: FastifyInstance,
  control: GithubSimulatorControl,
  listRepos: () => Record<string, unknown>[],
): void {
  sim.setErrorHandler((error, _request, reply) => {
    if (error instanceof ControlInputError) {
      void reply.code(400).send({ message: error.message, field: error.field });
      return;
    }
    const status = (error as { statusCode?: number }).statusCode;
    const code = typeof status === 'number' && status >= 400 && status < 500 ? status : 500;
    void reply.code(code).send({ message: (error as Error).message });
  });

  sim.get('/repos', async () => listRepos());

  sim.post('/repos', async (request, reply) => {
    const input = parse(AddRepo, request.body);
    control.addRepo(`${input.owner}/${input.name}`, input.collaborators ? { collaborators: input.collaborators } : {});
    return reply.code(201).send({ full_name: `${input.owner}/${input.name}` });
  });

  sim.get<{ Params: { owner: string; repo: string } }>('/repos/:owner/:repo/issues', async (request, reply) => {
    try {
      return control.issues(`${request.params.owner}/${request.params.repo}`);
    } catch {
      return reply.code(404).send({ message: 'Not Found' });
    }
  });

  sim.post<{ Params: { owner: string; repo: string } }>('/repos/:owner/:repo/pulls', async (request, reply) => {
    const input = parse(PullRequest, request.body);
    try {
      const number = control.createPullRequest(`${request.params.owner}/${request.params.repo}`, {
        title: input.title,
        ...(input.body === undefined ? {} : { body: input.body }),
        ...(input.login === undefined ? {} : { login: input.login }),
      });
      return reply.code(201).send({ number });
    } catch {
      return reply.code(404).send({ message: 'Not Found' });
    }
  });

  sim.get('/faults', async () => control.pendingFaults());
  sim.post('/faults', async (request, reply) => reply.code(201).send(control.injectFault(parse(FaultSpec, request.body))));
  sim.delete('/faults', async (_request, reply) => {
    control.clearFaults();
    return reply.code(204).send();
  });

  sim.put('/mode', async (request) => {
    const { mode } = parse(Mode, request.body);
    control.setMode(mode);
    return { mode };
  });

  sim.put('/latency', async (request) => {
    const { ms } = parse(Latency, request.body);
    control.setLatency(ms);
    return { ms };
  });

  sim.put('/rate-limit', async (request) => {
    const { token, ...change } = parse(RateLimit, request.body);
    const { limit, remaining, resetInSeconds } = change;
    return control.setRateLimit(token, {
      ...(limit === undefined ? {} : { limit }),
      ...(remaining === undefined ? {} : { remaining }),
      ...(resetInSeconds === undefined ? {} : { resetInSeconds }),
    });
  });

  sim.post('/rate-limit/reset', async (request, reply) => {
    control.resetRateLimits(parse(RateLimitReset, request.body)?.token);
    return reply.code(204).send();
  });

  sim.get('/counters', async () => control.counters());

  sim.post('/reset', async (_request, reply) => {
    control.reset();
    return reply.code(204).send();
  });
}
