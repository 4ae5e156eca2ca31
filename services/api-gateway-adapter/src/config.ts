import { connectors, ConnectionsConfigError, connectionVariables, loadConnections, type ConnectionConfig, type Connector } from '@switchyard/connectors';
import { checkConfig, configError, env, type ConfigProblem, type Env } from '@switchyard/service-runtime';
import { z } from 'zod';

export const ApiGatewayAdapterConfig = z
  .object({
    PORT: env.port(8080),
    HOST: env.host(),
    LOG_LEVEL: env.logLevel(),
    KAFKA_BROKERS: env.brokers(),
    TOPIC_PREFIX: env.topicPrefix(),
    /** Defaults to `${TOPIC_PREFIX}api-gateway-adapter`, so stacks sharing a cluster do not share a group. */
    KAFKA_GROUP_ID: z.string().min(1).max(255).optional(),
    KAFKA_SESSION_TIMEOUT_MS: z.coerce.number().int().min(6000).max(300000).default(30000),
    /** How many partitions' batches are handled at once. */
    KAFKA_PARTITIONS_CONCURRENTLY: z.coerce.number().int().min(1).max(64).default(6),
    /** Commands of one partition carried out at once; commands on one entity always run in order. */
    COMMAND_CONCURRENCY: z.coerce.number().int().min(1).max(256).default(16),
    /** How long POST /v1/commands waits for Kafka to acknowledge before answering 503. */
    COMMAND_PRODUCE_TIMEOUT_MS: env.milliseconds(5000),
    /** How long an Idempotency-Key names its command, and how far back the adapter remembers commands. */
    IDEMPOTENCY_WINDOW_MS: z.coerce.number().int().min(60000).max(7 * 24 * 3600000).default(24 * 3600000),
    /** Attempts per command at the provider, the first included. */
    COMMAND_MAX_ATTEMPTS: z.coerce.number().int().min(1).max(20).default(4),
    COMMAND_ATTEMPT_TIMEOUT_MS: env.milliseconds(10000),
    /**
     * How long one pick-up of a command may take, attempts, waits and lookups after a lost answer included: a
     * write whose outcome cannot be found out by then fails as AGW_UPSTREAM_OUTCOME_UNKNOWN.
     */
    COMMAND_DEADLINE_MS: env.milliseconds(60000),
    /** Between two lookups for a write whose answer was lost. */
    COMMAND_LOOKUP_INTERVAL_MS: env.milliseconds(1000),
    /** Commands older than this (by their `time`) are rejected as expired instead of carried out. */
    COMMAND_MAX_AGE_MS: env.milliseconds(3600000),
    /** First retry delay; each further one doubles, with jitter. */
    COMMAND_RETRY_BASE_DELAY_MS: env.milliseconds(250),
    /**
     * Longest wait between attempts, also for `retry-after` / `x-ratelimit-reset`: a provider asking for a longer
     * wait fails the command as rate-limited instead of holding the partition.
     */
    COMMAND_RETRY_MAX_DELAY_MS: env.milliseconds(15000),
    /** Consecutive failed attempts (5xx, network, timeout) that open a connection's circuit. */
    CIRCUIT_FAILURE_THRESHOLD: env.positiveInt(5),
    /** How long an open circuit refuses requests before letting a trial through. */
    CIRCUIT_HALF_OPEN_AFTER_MS: env.milliseconds(30000),
    /** Each key's command budget, unless the key sets its own `limits`: refill rate, per second, per instance. */
    COMMAND_RATE_PER_SECOND: z.coerce.number().positive().max(1_000_000).default(50),
    /** How many commands a key may send at once (the bucket's size); at least a full batch. */
    COMMAND_RATE_BURST: z.coerce.number().int().min(1).max(1_000_000).default(200),
    /** Sockets per connection, unless the connection sets its own (`<PROVIDER>_MAX_CONNECTIONS`). */
    CONNECTION_MAX_CONNECTIONS: z.coerce.number().int().min(1).max(1024).default(16),
    /** Requests in flight per connection, unless the connection sets its own (`<PROVIDER>_MAX_CONCURRENCY`). */
    CONNECTION_MAX_CONCURRENCY: z.coerce.number().int().min(1).max(1024).default(32),
  })
  .superRefine((config, context) => {
    if (config.COMMAND_ATTEMPT_TIMEOUT_MS + config.COMMAND_RETRY_MAX_DELAY_MS >= config.KAFKA_SESSION_TIMEOUT_MS) {
      context.addIssue({
        code: 'custom',
        path: ['COMMAND_RETRY_MAX_DELAY_MS'],
        message:
          `COMMAND_ATTEMPT_TIMEOUT_MS + COMMAND_RETRY_MAX_DELAY_MS (${config.COMMAND_ATTEMPT_TIMEOUT_MS + config.COMMAND_RETRY_MAX_DELAY_MS} ms) ` +
          `must stay below KAFKA_SESSION_TIMEOUT_MS (${config.KAFKA_SESSION_TIMEOUT_MS} ms): the adapter heartbeats between ` +
          'attempts, so a longer gap gets it thrown out of the consumer group mid-command',
      });
    }
    if (config.COMMAND_RETRY_BASE_DELAY_MS > config.COMMAND_RETRY_MAX_DELAY_MS) {
      context.addIssue({
        code: 'custom',
        path: ['COMMAND_RETRY_BASE_DELAY_MS'],
        message: 'must not exceed COMMAND_RETRY_MAX_DELAY_MS',
      });
    }
    if (config.COMMAND_MAX_AGE_MS > config.IDEMPOTENCY_WINDOW_MS) {
      context.addIssue({
        code: 'custom',
        path: ['COMMAND_MAX_AGE_MS'],
        message:
          'must not exceed IDEMPOTENCY_WINDOW_MS: a command older than the window is no longer known to have been carried out, so it must be refused as expired',
      });
    }
  });

export type ApiGatewayAdapterConfig = Omit<z.output<typeof ApiGatewayAdapterConfig>, 'KAFKA_GROUP_ID'> & {
  readonly KAFKA_GROUP_ID: string;
  /** Every configured connection (GITHUB_TOKEN → `github`; CONNECTIONS for more); secrets stay inside. */
  readonly connections: readonly ConnectionConfig[];
};

/** The variables the adapter reads, for its README and the local stack's checks. */
export function adapterVariables(env: Env, known: readonly Connector[] = connectors): string[] {
  return [...Object.keys(ApiGatewayAdapterConfig.shape), ...connectionVariables(known, env)];
}

/** Pure: the environment (and the connectors) are arguments. Every bad variable is named at once. */
export function loadApiGatewayAdapterConfig(environment: Env, known: readonly Connector[] = connectors): ApiGatewayAdapterConfig {
  const problems: ConfigProblem[] = [];
  const checked = checkConfig(ApiGatewayAdapterConfig, environment);
  if (!checked.ok) problems.push(...checked.problems);
  let connections: ConnectionConfig[] = [];
  try {
    connections = loadConnections(environment, known);
  } catch (error) {
    if (!(error instanceof ConnectionsConfigError)) throw error;
    problems.push(...error.problems);
  }
  if (!checked.ok || problems.length > 0) throw configError(problems);
  const config = checked.value;
  return { ...config, KAFKA_GROUP_ID: config.KAFKA_GROUP_ID ?? `${config.TOPIC_PREFIX}api-gateway-adapter`, connections };
}
