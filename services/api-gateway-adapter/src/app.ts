import { AuthError, CommandBudget, keyView, principalOf, type KeyManager, type KeyStore, type Principal } from '@switchyard/auth';
import { CommandApiError, IDEMPOTENCY_KEY_HEADER, MAX_WAIT_MS, parseDuration, WaitFor, type CommandStatusView } from '@switchyard/api';
import { topics } from '@switchyard/events';
import type { TopicNames } from '@switchyard/kafka';
import { createServiceApp, type FastifyInstance, type FastifyReply, type FastifyRequest, type ServiceAppOptions } from '@switchyard/service-runtime';
import type { Caller, CommandIntake, SubmitOptions } from './intake.js';
import { isFinished, statusView, type CommandsView } from './view.js';

export interface AppDeps extends ServiceAppOptions {
  readonly intake: Pick<CommandIntake, 'submit' | 'submitBatch'>;
  readonly view: Pick<CommandsView, 'get' | 'caughtUp' | 'waitForFinish' | 'waitForPosition'>;
  readonly names: TopicNames;
  readonly budget: Pick<CommandBudget, 'take'>;
  readonly keys: Pick<KeyManager, 'create' | 'revoke'>;
  readonly keyStore: Pick<KeyStore, 'get' | 'all'>;
}

const DEFAULT_WAIT_MS = 10000;

function header(request: FastifyRequest, name: string): string | undefined {
  const value = request.headers[name];
  return typeof value === 'string' ? value : undefined;
}

function callerOf(principal: Principal): Caller {
  return { keyId: principal.keyId, auth: principal.auth, missingToSend: (type) => principal.grants.missingToSend(type) };
}

function submitOptions(request: FastifyRequest): SubmitOptions {
  return {
    traceparent: header(request, 'traceparent'),
    idempotencyKey: header(request, IDEMPOTENCY_KEY_HEADER),
    caller: callerOf(principalOf(request)),
  };
}

/** Takes `cost` commands from the key's budget, sets the RateLimit headers, and refuses with 429 when it is spent. */
function spend(deps: AppDeps, request: FastifyRequest, reply: FastifyReply, cost: number): void {
  const principal = principalOf(request);
  const decision = deps.budget.take(principal.keyId, cost, principal.limits);
  void reply.headers(CommandBudget.headers(decision));
  if (decision.allowed) return;
  const why = cost > decision.limit ? `${cost} commands at once are more than its burst of ${decision.limit}; send fewer per batch` : `retry in ${decision.retryAfterSeconds} s`;
  throw new AuthError('AUTH_RATE_LIMITED', `key ${principal.keyId} has used its command budget: ${why}`);
}

/** `?wait=result|projected&timeout=10s`, checked; undefined when the caller does not wait. */
function waitQuery(query: unknown): { for: WaitFor; timeoutMs: number } | undefined {
  const { wait, timeout } = (query ?? {}) as Record<string, unknown>;
  if (wait === undefined) {
    if (timeout !== undefined) throw new CommandApiError('AGW_REQUEST_INVALID', 'timeout: only with wait=result or wait=projected', { details: { field: 'timeout' } });
    return undefined;
  }
  const mode = WaitFor.safeParse(wait);
  if (!mode.success) throw new CommandApiError('AGW_REQUEST_INVALID', 'wait: expected result or projected', { details: { field: 'wait' } });
  const timeoutMs = timeout === undefined ? DEFAULT_WAIT_MS : typeof timeout === 'string' ? parseDuration(timeout) : undefined;
  if (timeoutMs === undefined || timeoutMs < 1 || timeoutMs > MAX_WAIT_MS) {
    throw new CommandApiError('AGW_REQUEST_INVALID', `timeout: expected a duration such as 500ms or 10s, at most ${MAX_WAIT_MS / 1000}s`, {
      details: { field: 'timeout' },
    });
  }
  return { for: mode.data, timeoutMs };
}

/**
 * Ops endpoints plus the command API (packages/api describes the bodies):
 * - `POST /v1/commands`: validates a command, writes it to the commands topic and answers 202 with its receipt
 *   once Kafka has it; with `?wait=result` (or `projected`) holds the answer until the command has finished (and
 *   its entity is committed to Postgres) and answers 200 with its status, or 202 when `timeout` comes first.
 * - `POST /v1/commands:batch`: up to 100 commands, a receipt or an error for each.
 * - `GET /v1/commands/:id`: the command's status, timeline, entity and error, from Kafka; another key's command
 *   is a 404 unless the caller may read all.
 * - `POST /v1/keys`, `GET /v1/keys`, `GET /v1/keys/:id`, `DELETE /v1/keys/:id` (revoke): key management, admin only.
 * Every route but the ops endpoints needs a key (packages/auth `guard`); each states its requirement in
 * `config.auth`, and commands take from the key's budget (429 AUTH_RATE_LIMITED when spent).
 */
export function buildApp(deps: AppDeps): FastifyInstance {
  const app = createServiceApp(deps);
  const entitiesTopic = deps.names.name(topics.entities);

  /** The command's status once what the caller waits for has happened; undefined when the timeout came first. */
  async function waited(commandId: string, wait: { for: WaitFor; timeoutMs: number }): Promise<CommandStatusView | undefined> {
    const deadline = Date.now() + wait.timeoutMs;
    const record = await deps.view.waitForFinish(commandId, wait.timeoutMs);
    if (record === undefined || !isFinished(record)) return undefined;
    const view = statusView(record);
    const position = record.entity?.position;
    if (wait.for === 'result' || position === undefined) return view;
    const projected = await deps.view.waitForPosition('entities', entitiesTopic, position.partition, BigInt(position.offset), Math.max(0, deadline - Date.now()));
    return projected ? { ...view, projected: true } : undefined;
  }

  app.post('/v1/commands', { config: { auth: 'commands:send' } }, async (request, reply) => {
    spend(deps, request, reply, 1);
    const wait = waitQuery(request.query);
    const { receipt, replayed } = await deps.intake.submit(request.body, submitOptions(request));
    void reply.header('location', `/v1/commands/${encodeURIComponent(receipt.commandId)}`);
    if (replayed) void reply.header('idempotent-replayed', 'true');
    if (wait !== undefined) {
      const status = await waited(receipt.commandId, wait);
      if (status !== undefined) return reply.code(200).send(status);
    }
    return reply.code(202).send(receipt);
  });

  // `::` is fastify's literal colon.
  app.post('/v1/commands::batch', { config: { auth: 'commands:send' } }, async (request, reply) => {
    const commands = (request.body as { commands?: unknown } | null)?.commands;
    spend(deps, request, reply, Array.isArray(commands) ? Math.max(1, commands.length) : 1);
    if (request.query && Object.keys(request.query).length > 0) {
      throw new CommandApiError('AGW_REQUEST_INVALID', 'query: a batch takes no query parameters (no wait)', { details: { field: 'query' } });
    }
    const results = await deps.intake.submitBatch(request.body, submitOptions(request));
    return reply.code(200).send({ results });
  });

  app.get<{ Params: { id: string } }>('/v1/commands/:id', { config: { auth: 'commands:read' } }, async (request, reply) => {
    const { id } = request.params;
    const principal = principalOf(request);
    let record = deps.view.get(id);
    if (record === undefined) {
      // Perhaps written a moment ago through another instance: read the topics up to now before saying no.
      await deps.view.caughtUp().catch(() => undefined);
      record = deps.view.get(id);
    }
    // Another key's command is answered as if it did not exist, so command ids do not leak (404, not 403).
    if (record === undefined || record.type === '' || !principal.grants.mayRead(record.authId, principal.keyId)) {
      throw new CommandApiError('AGW_COMMAND_NOT_FOUND', `no command ${id} that this key may read was submitted within the idempotency window (IDEMPOTENCY_WINDOW_MS)`, { details: { field: 'id' } });
    }
    return reply.code(200).send(statusView(record));
  });

  // Key management (admin). The key itself is in the answer to its creation only.
  app.post('/v1/keys', { config: { auth: 'admin' } }, async (request, reply) => {
    const created = await deps.keys.create(request.body, principalOf(request).keyId);
    return reply.code(201).header('location', `/v1/keys/${created.view.keyId}`).send({ key: created.key, ...created.view });
  });
  app.get('/v1/keys', { config: { auth: 'admin' } }, async () => ({
    keys: deps.keyStore.all().map((key) => keyView(key.record)).sort((a, b) => a.createdAt.localeCompare(b.createdAt)),
  }));
  app.get<{ Params: { id: string } }>('/v1/keys/:id', { config: { auth: 'admin' } }, async (request) => {
    const stored = deps.keyStore.get(request.params.id);
    if (stored === undefined) throw new AuthError('AUTH_KEY_NOT_FOUND', `no key ${request.params.id}`, { details: { field: 'id' } });
    return keyView(stored.record);
  });
  app.delete<{ Params: { id: string } }>('/v1/keys/:id', { config: { auth: 'admin' } }, async (request) =>
    deps.keys.revoke(request.params.id, principalOf(request).keyId),
  );
  return app;
}
