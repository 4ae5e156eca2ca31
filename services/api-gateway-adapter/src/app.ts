import { CommandApiError, IDEMPOTENCY_KEY_HEADER, MAX_WAIT_MS, parseDuration, WaitFor, type CommandStatusView } from '@switchyard/api';
import { topics } from '@switchyard/events';
import type { TopicNames } from '@switchyard/kafka';
import { createServiceApp, type FastifyInstance, type FastifyRequest, type ServiceAppOptions } from '@switchyard/service-runtime';
import type { CommandIntake, SubmitOptions } from './intake.js';
import { isFinished, statusView, type CommandsView } from './view.js';

export interface AppDeps extends ServiceAppOptions {
  readonly intake: Pick<CommandIntake, 'submit' | 'submitBatch'>;
  readonly view: Pick<CommandsView, 'get' | 'caughtUp' | 'waitForFinish' | 'waitForPosition'>;
  readonly names: TopicNames;
}

const DEFAULT_WAIT_MS = 10000;

function header(request: FastifyRequest, name: string): string | undefined {
  const value = request.headers[name];
  return typeof value === 'string' ? value : undefined;
}

function submitOptions(request: FastifyRequest): SubmitOptions {
  return { traceparent: header(request, 'traceparent'), idempotencyKey: header(request, IDEMPOTENCY_KEY_HEADER) };
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
 * - `GET /v1/commands/:id`: the command's status, timeline, entity and error, from Kafka.
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

  app.post('/v1/commands', async (request, reply) => {
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
  app.post('/v1/commands::batch', async (request, reply) => {
    if (request.query && Object.keys(request.query).length > 0) {
      throw new CommandApiError('AGW_REQUEST_INVALID', 'query: a batch takes no query parameters (no wait)', { details: { field: 'query' } });
    }
    const results = await deps.intake.submitBatch(request.body, submitOptions(request));
    return reply.code(200).send({ results });
  });

  app.get<{ Params: { id: string } }>('/v1/commands/:id', async (request, reply) => {
    const { id } = request.params;
    let record = deps.view.get(id);
    if (record === undefined) {
      // Perhaps written a moment ago through another instance: read the topics up to now before saying no.
      await deps.view.caughtUp().catch(() => undefined);
      record = deps.view.get(id);
    }
    if (record === undefined || record.type === '') {
      throw new CommandApiError('AGW_COMMAND_NOT_FOUND', `no command ${id} was submitted within the idempotency window (IDEMPOTENCY_WINDOW_MS)`, { details: { field: 'id' } });
    }
    return reply.code(200).send(statusView(record));
  });
  return app;
}
