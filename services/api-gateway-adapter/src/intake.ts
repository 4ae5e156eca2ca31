import {
  commandCatalog,
  createEvent,
  isCommandType,
  isTraceparent,
  childTraceparent,
  newId,
  newTraceparent,
  topics,
  type CommandType,
  type TopicEventInput,
  type Topics,
} from '@switchyard/events';
import { KafkaError, type EventProducer } from '@switchyard/kafka';
import { firstIssue } from '@switchyard/service-runtime';
import { z } from 'zod';
import { AdapterError } from './errors.js';
import type { AdapterMetrics } from './metrics.js';

export const HTTP_SOURCE = 'switchyard/api-gateway-adapter/http';

type CommandEnvelope = TopicEventInput<Topics['commands']>;

/** What POST /v1/commands answers with 202. */
export interface CommandReceipt {
  readonly commandId: string;
  readonly correlationId: string;
  readonly type: CommandType;
  readonly target: string;
}

const KNOWN_FIELDS = ['type', 'input', 'connection', 'idempotencyKey', 'correlationId'];

const Optional = {
  connection: z.string().min(1).max(100),
  idempotencyKey: z.string().min(1).max(255),
  correlationId: z.string().min(1).max(200),
} as const;

export interface BuildCommandOptions {
  /** Connections this adapter can use; commands it handles must name one of them. */
  readonly connections: readonly string[];
  /** The caller's W3C traceparent header, continued when valid. */
  readonly traceparent?: string | undefined;
  readonly now?: Date;
  readonly id?: string;
}

/**
 * Validates a submission and builds its command envelope. Pure. Each error names the first bad field: `type`,
 * `input.<path>`, `connection`, … (answered as HTTP 400).
 */
export function buildCommand(body: unknown, options: BuildCommandOptions): { envelope: CommandEnvelope; receipt: CommandReceipt } {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new AdapterError('AGW_REQUEST_INVALID', 'body: expected a JSON object {type, input, …}', { details: { field: '' } });
  }
  const fields = body as Record<string, unknown>;
  const unknown = Object.keys(fields).find((key) => !KNOWN_FIELDS.includes(key));
  if (unknown !== undefined) {
    throw new AdapterError('AGW_REQUEST_INVALID', `${unknown}: unknown field; expected ${KNOWN_FIELDS.join(', ')}`, {
      details: { field: unknown },
    });
  }

  const type = fields['type'];
  if (typeof type !== 'string' || !isCommandType(type)) {
    const known = Object.keys(commandCatalog).join(', ');
    const what = type === undefined ? 'required' : `unknown command type ${JSON.stringify(type)}`;
    throw new AdapterError('AGW_COMMAND_TYPE_INVALID', `type: ${what}; expected one of ${known}`, { details: { field: 'type' } });
  }
  const spec = commandCatalog[type];
  if (fields['input'] === undefined) {
    throw new AdapterError('AGW_COMMAND_INPUT_INVALID', `input: required for ${type}`, { details: { field: 'input' } });
  }
  const parsed = spec.input.safeParse(fields['input']);
  if (!parsed.success) {
    const { field, message } = firstIssue(parsed.error, 'input');
    throw new AdapterError('AGW_COMMAND_INPUT_INVALID', `${field}: ${message}`, { details: { field } });
  }
  const input = parsed.data;

  const optional: Partial<Record<keyof typeof Optional, string>> = {};
  for (const [name, schema] of Object.entries(Optional) as [keyof typeof Optional, z.ZodString][]) {
    if (fields[name] === undefined) continue;
    const value = schema.safeParse(fields[name]);
    if (!value.success) {
      throw new AdapterError('AGW_REQUEST_INVALID', `${name}: ${value.error.issues[0]?.message ?? 'invalid'}`, { details: { field: name } });
    }
    optional[name] = value.data;
  }

  // The provider is the type's first word: github.issue.create → github.
  const connection = optional.connection ?? type.slice(0, type.indexOf('.'));
  if (spec.handledBy === 'api-gateway-adapter' && !options.connections.includes(connection)) {
    throw new AdapterError(
      'AGW_CONNECTION_INVALID',
      `connection: no connection named ${JSON.stringify(connection)}; configured: ${options.connections.join(', ') || 'none'}`,
      { details: { field: 'connection' } },
    );
  }

  const id = options.id ?? newId();
  const target = (spec.target as (value: unknown) => string)(input);
  const correlationId = optional.correlationId ?? id;
  const envelope = createEvent({
    id,
    type,
    source: HTTP_SOURCE,
    subject: target,
    time: options.now,
    correlationId,
    traceparent:
      options.traceparent !== undefined && isTraceparent(options.traceparent) ? childTraceparent(options.traceparent) : newTraceparent(),
    data: { connection, idempotencyKey: optional.idempotencyKey ?? id, input },
  }) as CommandEnvelope;
  return { envelope, receipt: { commandId: id, correlationId, type, target } };
}

export interface CommandIntakeDeps {
  readonly producer: Pick<EventProducer, 'send' | 'isConnected'>;
  readonly connections: readonly string[];
  readonly produceTimeoutMs: number;
  readonly metrics: AdapterMetrics;
}

/** Takes submissions from HTTP and writes them to the commands topic, waiting for Kafka's acknowledgement. */
export class CommandIntake {
  private readonly deps: CommandIntakeDeps;

  constructor(deps: CommandIntakeDeps) {
    this.deps = deps;
  }

  async submit(body: unknown, traceparent: string | undefined): Promise<CommandReceipt> {
    let built;
    try {
      built = buildCommand(body, { connections: this.deps.connections, traceparent });
    } catch (error) {
      const type = (body as { type?: unknown } | null)?.type;
      this.deps.metrics.submissions.inc({ type: typeof type === 'string' && isCommandType(type) ? type : 'unknown', outcome: 'invalid' });
      throw error;
    }
    const { envelope, receipt } = built;
    try {
      if (!this.deps.producer.isConnected) throw new Error('the producer is not connected');
      await withTimeout(this.deps.producer.send(topics.commands, [envelope]), this.deps.produceTimeoutMs);
    } catch (cause) {
      // A command that does not match its own schema is our bug, not Kafka's: let it be a 500.
      if (cause instanceof KafkaError && cause.code === 'KFK_INVALID_EVENT') throw cause;
      this.deps.metrics.submissions.inc({ type: receipt.type, outcome: 'unavailable' });
      throw new AdapterError('AGW_KAFKA_UNAVAILABLE', `the command could not be written to Kafka: ${(cause as Error).message}`, { cause });
    }
    this.deps.metrics.submissions.inc({ type: receipt.type, outcome: 'produced' });
    return receipt;
  }
}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no acknowledgement within ${ms} ms`)), ms);
  });
  // The send keeps running after a timeout; a later failure of it must not go unhandled.
  promise.catch(() => undefined);
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
