import { env, loadConfig, type Env } from '@switchyard/service-runtime';
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
    /** How many partitions' batches are handled at once; commands of one partition always run in order. */
    KAFKA_PARTITIONS_CONCURRENTLY: z.coerce.number().int().min(1).max(64).default(3),
    /** How long POST /v1/commands waits for Kafka to acknowledge before answering 503. */
    COMMAND_PRODUCE_TIMEOUT_MS: env.milliseconds(5000),
    /** Base URL of the GitHub REST API (`https://api.github.com`, or `https://ghe.example.com/api/v3`). */
    GITHUB_API_URL: env.url(),
    GITHUB_TOKEN: env.secret(),
    /** Connections to the GitHub API kept open at most. */
    GITHUB_MAX_CONNECTIONS: z.coerce.number().int().min(1).max(256).default(10),
    /** Attempts per command against the API, the first included. */
    COMMAND_MAX_ATTEMPTS: z.coerce.number().int().min(1).max(20).default(4),
    COMMAND_ATTEMPT_TIMEOUT_MS: env.milliseconds(10000),
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
  });

export type ApiGatewayAdapterConfig = Omit<z.output<typeof ApiGatewayAdapterConfig>, 'KAFKA_GROUP_ID'> & {
  readonly KAFKA_GROUP_ID: string;
};

export function loadApiGatewayAdapterConfig(environment: Env): ApiGatewayAdapterConfig {
  const config = loadConfig(ApiGatewayAdapterConfig, environment);
  return { ...config, KAFKA_GROUP_ID: config.KAFKA_GROUP_ID ?? `${config.TOPIC_PREFIX}api-gateway-adapter` };
}
