import { createHash } from 'node:crypto';
import { AuthError } from '@switchyard/auth';
import {
  CommandApiError,
  MAX_BATCH_COMMANDS,
  MAX_IDEMPOTENCY_KEY_LENGTH,
  SUBMISSION_FIELDS,
  type BatchItemAnswer,
  type CommandReceipt,
} from '@switchyard/api';
import {
  childTraceparent,
  commandCatalog,
  createEvent,
  isCommandType,
  isTraceparent,
  newId,
  newTraceparent,
  topics,
  type AuthContext,
  type TopicEvent,
  type TopicEventInput,
  type Topics,
} from '@switchyard/events';
import { KafkaError, type EventProducer } from '@switchyard/kafka';
import { firstIssue } from '@switchyard/service-runtime';
import { z } from 'zod';
import type { AdapterMetrics } from './metrics.js';
import { commandFingerprint, type CommandsView } from './view.js';

export const HTTP_SOURCE = 'switchyard/api-gateway-adapter/http';

type CommandEnvelope = TopicEventInput<Topics['commands']>;

const Optional = {
  connection: z.string().min(1).max(100),
  idempotencyKey: z.string().min(1).max(MAX_IDEMPOTENCY_KEY_LENGTH),
  correlationId: z.string().min(1).max(200),
} as const;

/** Printable ASCII without spaces at either end, as a header value can carry it. */
const KEY_PATTERN = /^[\x21-\x7e](?:[\x20-\x7e]*[\x21-\x7e])?$/;

/**
 * The command id a caller's idempotency key stands for: the same on every instance and after every restart, so a
 * repeat is recognised anywhere and two instances racing on one key still write the same command. A UUIDv8
 * (RFC 9562) from a SHA-256 of caller and key.
 */
export function commandIdFor(caller: string, key: string): string {
  const bytes = createHash('sha256').update(`switchyard-command\0${caller}\0${key}`).digest().subarray(0, 16);
  bytes[6] = 0x80 | ((bytes[6] ?? 0) & 0x0f);
  bytes[8] = 0x80 | ((bytes[8] ?? 0) & 0x3f);
  const hex = bytes.toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/** The provider a command type goes to: its first word (`github.issue.create` → github). */
export function providerOf(type: string): string {
  return type.slice(0, type.indexOf('.'));
}

/** The sender of a submission: its key's id, its Auth Context, and what it may send. */
export interface Caller {
  readonly keyId: string;
  readonly auth: AuthContext;
  /** The scope sending this command type needs, or undefined when the caller has it. */
  readonly missingToSend: (type: string) => string | undefined;
}

export interface BuildCommandOptions {
  /** Connections this adapter can use, by name → provider; commands it carries out must name one of its type's. */
  readonly connections: ReadonlyMap<string, string>;
  /** The caller's W3C traceparent header, continued when valid. */
  readonly traceparent?: string | undefined;
  /** The `Idempotency-Key` header, when sent. */
  readonly idempotencyKey?: string | undefined;
  /** Who is asking; idempotency keys are per caller, and its commands carry its Auth Context. */
  readonly caller?: Caller | undefined;
  readonly now?: Date;
  /** The command id when no idempotency key names it (default: a new UUIDv7). */
  readonly id?: string;
}

/**
 * Validates a submission and builds its command envelope. Pure. Each error names the first bad field: `type`,
 * `input.<path>`, `connection`, `idempotencyKey`, … (answered as HTTP 400).
 */
export function buildCommand(body: unknown, options: BuildCommandOptions): { envelope: CommandEnvelope; receipt: CommandReceipt; keyed: boolean } {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new CommandApiError('AGW_REQUEST_INVALID', 'body: expected a JSON object {type, input, …}', { details: { field: 'body' } });
  }
  const fields = body as Record<string, unknown>;
  const unknown = Object.keys(fields).find((key) => !(SUBMISSION_FIELDS as readonly string[]).includes(key));
  if (unknown !== undefined) {
    // A key that is not a plain name (empty, spaces, dots) is named as it was sent.
    const field = /^[A-Za-z_$][\w$]*$/.test(unknown) ? unknown : `body[${JSON.stringify(unknown)}]`;
    throw new CommandApiError('AGW_REQUEST_INVALID', `${field}: unknown field; expected ${SUBMISSION_FIELDS.join(', ')}`, {
      details: { field },
    });
  }

  const type = fields['type'];
  if (typeof type !== 'string' || !isCommandType(type)) {
    const known = Object.keys(commandCatalog).join(', ');
    const what = type === undefined ? 'required' : `unknown command type ${JSON.stringify(type)}`;
    throw new CommandApiError('AGW_COMMAND_TYPE_INVALID', `type: ${what}; expected one of ${known}`, { details: { field: 'type' } });
  }
  const missing = options.caller?.missingToSend(type);
  if (missing !== undefined) {
    throw new AuthError('AUTH_SCOPE_MISSING', `type: key ${options.caller!.keyId} lacks the scope ${missing}`, { details: { field: 'type' } });
  }
  const spec = commandCatalog[type];
  if (fields['input'] === undefined) {
    throw new CommandApiError('AGW_COMMAND_INPUT_INVALID', `input: required for ${type}`, { details: { field: 'input' } });
  }
  const parsed = spec.input.safeParse(fields['input']);
  if (!parsed.success) {
    const { field, message } = firstIssue(parsed.error, 'input');
    throw new CommandApiError('AGW_COMMAND_INPUT_INVALID', `${field}: ${message}`, { details: { field } });
  }
  const input = parsed.data;

  const optional: Partial<Record<keyof typeof Optional, string>> = {};
  for (const [name, schema] of Object.entries(Optional) as [keyof typeof Optional, z.ZodString][]) {
    if (fields[name] === undefined) continue;
    const value = schema.safeParse(fields[name]);
    if (!value.success) {
      throw new CommandApiError('AGW_REQUEST_INVALID', `${name}: ${value.error.issues[0]?.message ?? 'invalid'}`, { details: { field: name } });
    }
    optional[name] = value.data;
  }

  const header = options.idempotencyKey;
  if (header !== undefined && (header.length > MAX_IDEMPOTENCY_KEY_LENGTH || !KEY_PATTERN.test(header))) {
    throw new CommandApiError('AGW_REQUEST_INVALID', `Idempotency-Key: expected 1 to ${MAX_IDEMPOTENCY_KEY_LENGTH} printable ASCII characters`, {
      details: { field: 'Idempotency-Key' },
    });
  }
  if (header !== undefined && optional.idempotencyKey !== undefined && header !== optional.idempotencyKey) {
    throw new CommandApiError('AGW_REQUEST_INVALID', 'idempotencyKey: differs from the Idempotency-Key header; send one, or the same in both', {
      details: { field: 'idempotencyKey' },
    });
  }
  const key = header ?? optional.idempotencyKey;

  const connection = optional.connection ?? providerOf(type);
  if (spec.handledBy === 'api-gateway-adapter' && options.connections.get(connection) !== providerOf(type)) {
    const configured = [...options.connections].filter(([, provider]) => provider === providerOf(type)).map(([name]) => name);
    throw new CommandApiError(
      'AGW_CONNECTION_INVALID',
      `connection: no ${providerOf(type)} connection named ${JSON.stringify(connection)}; configured: ${configured.join(', ') || 'none'}`,
      { details: { field: 'connection' } },
    );
  }

  const id = key === undefined ? (options.id ?? newId()) : commandIdFor(options.caller?.keyId ?? 'anonymous', key);
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
    auth: options.caller?.auth,
    data: { connection, idempotencyKey: key ?? id, input },
  }) as CommandEnvelope;
  return { envelope, receipt: { commandId: id, correlationId, type, target }, keyed: key !== undefined };
}

export interface Submission {
  readonly receipt: CommandReceipt;
  /** True when the key named a command already written: nothing new was written. */
  readonly replayed: boolean;
}

export interface SubmitOptions {
  readonly traceparent?: string | undefined;
  readonly idempotencyKey?: string | undefined;
  readonly caller?: Caller | undefined;
}

export interface CommandIntakeDeps {
  readonly producer: Pick<EventProducer, 'send' | 'isConnected'>;
  readonly view: Pick<CommandsView, 'get' | 'caughtUp' | 'noteCommand'>;
  readonly connections: ReadonlyMap<string, string>;
  readonly produceTimeoutMs: number;
  readonly metrics: AdapterMetrics;
}

/**
 * Takes submissions from HTTP and writes them to the commands topic, waiting for Kafka's acknowledgement. A
 * submission with an idempotency key whose command is already known (from the commands topic, on this or any
 * instance) is answered with the original receipt and writes nothing; with another body it is refused
 * (AGW_IDEMPOTENCY_KEY_REUSED). Identical submissions in flight at once on one instance share one write.
 */
export class CommandIntake {
  private readonly deps: CommandIntakeDeps;
  /** Keyed commands being written, until Kafka acknowledges them (or refuses for good). */
  private readonly inFlight = new Map<string, Promise<void>>();

  constructor(deps: CommandIntakeDeps) {
    this.deps = deps;
  }

  async submit(body: unknown, options: SubmitOptions = {}): Promise<Submission> {
    const [outcome] = await this.write([this.build(body, options)]);
    if (outcome!.status === 'rejected') throw outcome!.reason;
    return outcome!.value;
  }

  /** A batch: each item answered on its own; the valid ones written together in one produce request. */
  async submitBatch(body: unknown, options: SubmitOptions = {}): Promise<BatchItemAnswer[]> {
    const commands = (body as { commands?: unknown } | null)?.commands;
    if (typeof body !== 'object' || body === null || Array.isArray(body) || Object.keys(body).some((key) => key !== 'commands')) {
      throw new CommandApiError('AGW_REQUEST_INVALID', 'body: expected {"commands": [ … ]}', { details: { field: 'body' } });
    }
    if (!Array.isArray(commands) || commands.length === 0 || commands.length > MAX_BATCH_COMMANDS) {
      throw new CommandApiError('AGW_REQUEST_INVALID', `commands: expected an array of 1 to ${MAX_BATCH_COMMANDS} commands`, {
        details: { field: 'commands' },
      });
    }
    const answers: (BatchItemAnswer | undefined)[] = [];
    const valid: { index: number; built: ReturnType<typeof buildCommand> }[] = [];
    commands.forEach((command: unknown, index) => {
      try {
        // A batch's Idempotency-Key names each item without a key of its own: `<key>:<index>`.
        const itemKey = options.idempotencyKey === undefined ? undefined : `${options.idempotencyKey}:${index}`;
        const own = (command as { idempotencyKey?: unknown } | null)?.idempotencyKey;
        const built = this.build(command, { ...options, idempotencyKey: own === undefined ? itemKey : undefined });
        valid.push({ index, built });
        answers.push(undefined);
      } catch (error) {
        if (!(error instanceof CommandApiError || error instanceof AuthError)) throw error;
        const field = error.field === undefined ? `commands[${index}]` : `commands[${index}].${error.field}`;
        answers.push({ ok: false, status: error.httpStatus ?? 400, error: { code: error.code, message: error.message, field, retriable: error.retriable } });
      }
    });
    if (valid.length > 0) {
      const written = await this.write(valid.map(({ built }) => built));
      valid.forEach(({ index }, position) => {
        const outcome = written[position]!;
        if (outcome.status === 'fulfilled') {
          answers[index] = { ok: true, status: 202, receipt: outcome.value.receipt };
          return;
        }
        const error: unknown = outcome.reason;
        if (!(error instanceof CommandApiError)) throw error instanceof Error ? error : new Error(String(error));
        const field = error.field === undefined ? `commands[${index}]` : `commands[${index}].${error.field}`;
        answers[index] = { ok: false, status: error.httpStatus ?? (error.retriable ? 503 : 400), error: { code: error.code, message: error.message, field, retriable: error.retriable } };
      });
    }
    return answers.map((answer) => answer!);
  }

  private build(body: unknown, options: SubmitOptions): ReturnType<typeof buildCommand> {
    try {
      return buildCommand(body, { connections: this.deps.connections, ...options });
    } catch (error) {
      const type = (body as { type?: unknown } | null)?.type;
      this.deps.metrics.submissions.inc({ type: typeof type === 'string' && isCommandType(type) ? type : 'unknown', outcome: 'invalid' });
      throw error;
    }
  }

  /** Writes what is new, answers repeats from the view, refuses keys reused for something else; one outcome each. */
  private async write(commands: readonly ReturnType<typeof buildCommand>[]): Promise<PromiseSettledResult<Submission>[]> {
    // Keyed repeats may have been written by another instance a moment ago: read the commands topic up to now.
    if (commands.some((command) => command.keyed)) await this.deps.view.caughtUp([topics.commands], 2000).catch(() => undefined);
    const out: Promise<Submission>[] = [];
    const fresh: { envelope: CommandEnvelope; keyed: boolean; settle: (error?: Error) => void }[] = [];
    for (const { envelope, receipt, keyed } of commands) {
      const known = keyed ? this.deps.view.get(envelope.id) : undefined;
      if (known?.fingerprint !== undefined) {
        if (known.fingerprint !== commandFingerprint(envelope)) {
          this.deps.metrics.submissions.inc({ type: receipt.type, outcome: 'conflict' });
          out.push(
            Promise.reject(
              new CommandApiError('AGW_IDEMPOTENCY_KEY_REUSED', `Idempotency-Key: already names command ${envelope.id}, which asks for something else`, {
                details: { field: 'Idempotency-Key' },
              }),
            ),
          );
          continue;
        }
        this.deps.metrics.submissions.inc({ type: receipt.type, outcome: 'replayed' });
        out.push(Promise.resolve({ receipt: { ...receipt, correlationId: known.correlationId }, replayed: true }));
        continue;
      }
      // The same key still being written (by this instance, perhaps for a request that already timed out): its
      // outcome is this one's, so nothing is written twice.
      const pending = keyed ? this.inFlight.get(envelope.id) : undefined;
      if (pending !== undefined) {
        this.deps.metrics.submissions.inc({ type: receipt.type, outcome: 'replayed' });
        out.push(withTimeout(pending, this.deps.produceTimeoutMs).then(() => ({ receipt, replayed: true }), (cause: unknown) => Promise.reject(unavailable(cause))));
        continue;
      }
      out.push(
        new Promise<Submission>((resolve, reject) => {
          fresh.push({ envelope, keyed, settle: (error) => (error === undefined ? resolve({ receipt, replayed: false }) : reject(error)) });
        }),
      );
    }
    if (fresh.length > 0) await this.produce(fresh);
    return Promise.allSettled(out);
  }

  private async produce(fresh: readonly { envelope: CommandEnvelope; keyed: boolean; settle: (error?: Error) => void }[]): Promise<void> {
    const envelopes = fresh.map(({ envelope }) => envelope);
    const sending = this.deps.producer.isConnected ? this.deps.producer.send(topics.commands, envelopes) : Promise.reject(new Error('the producer is not connected'));
    // However long the write takes, once Kafka has it the view knows it, and until then a repeat of a keyed command
    // waits for it rather than writing it again.
    const written = sending.then(() => {
      for (const envelope of envelopes) this.deps.view.noteCommand(envelope as TopicEvent<Topics['commands']>);
    });
    for (const { envelope, keyed } of fresh) {
      if (!keyed) continue;
      this.inFlight.set(envelope.id, written);
      void written.then(
        () => this.inFlight.delete(envelope.id),
        () => this.inFlight.delete(envelope.id),
      );
    }
    try {
      await withTimeout(written, this.deps.produceTimeoutMs);
    } catch (cause) {
      const error = unavailable(cause);
      for (const { envelope, settle } of fresh) {
        this.deps.metrics.submissions.inc({ type: envelope.type, outcome: 'unavailable' });
        settle(error);
      }
      return;
    }
    for (const { envelope, settle } of fresh) {
      this.deps.metrics.submissions.inc({ type: envelope.type, outcome: 'produced' });
      settle();
    }
  }
}

/** A write Kafka did not acknowledge in time; a command that does not match its own schema is our bug (a 500). */
function unavailable(cause: unknown): Error {
  if (cause instanceof KafkaError && cause.code === 'KFK_INVALID_EVENT') return cause;
  return new CommandApiError('AGW_KAFKA_UNAVAILABLE', `the command could not be written to Kafka: ${(cause as Error).message}`, { cause });
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
