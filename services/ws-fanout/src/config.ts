import { env, loadConfig, type Env } from '@switchyard/service-runtime';
import { z } from 'zod';

/** `https://app.example.com,http://localhost:5173` → origins as browsers send them (scheme://host[:port]). */
const Origins = z
  .string()
  .transform((value) => value.split(',').map((entry) => entry.trim()).filter(Boolean))
  .pipe(
    z
      .array(
        z.string().refine((entry) => URL.canParse(entry) && new URL(entry).origin === entry, {
          message: 'expected origins like https://app.example.com (scheme://host[:port], no path)',
        }),
      )
      .min(1, 'name at least one origin, or leave it unset to allow any'),
  );

/** The shutdown budget of the service runtime's Lifecycle; closing clients must fit inside it with room to spare. */
const SHUTDOWN_BUDGET_MS = 25000;
const MAX_CLOSE_TIMEOUT_MS = 20000;

export const WsFanoutConfig = z.object({
  PORT: env.port(8083),
  HOST: env.host(),
  LOG_LEVEL: env.logLevel(),
  KAFKA_BROKERS: env.brokers(),
  TOPIC_PREFIX: env.topicPrefix(),
  /** A client whose unsent frames would exceed this many bytes is too slow and is closed with 4008. */
  WS_MAX_BUFFERED_BYTES: env.positiveInt(1024 * 1024),
  WS_PING_INTERVAL_MS: env.milliseconds(30000),
  WS_MAX_SUBSCRIPTIONS: env.positiveInt(100),
  WS_MAX_CONNECTIONS: env.positiveInt(10000),
  /** Largest message a client may send (a subscribe with a long subject list); larger closes with 1009. */
  WS_MAX_MESSAGE_BYTES: env.positiveInt(64 * 1024),
  /** How long a client gets to answer a close (shutdown, slow client) before its TCP connection is dropped. */
  WS_CLOSE_TIMEOUT_MS: z.coerce
    .number()
    .int()
    .min(1)
    .max(MAX_CLOSE_TIMEOUT_MS, `at most ${MAX_CLOSE_TIMEOUT_MS}: shutdown waits this long for clients and has ${SHUTDOWN_BUDGET_MS} ms in all`)
    .default(5000),
  /** Browser origins allowed to connect (comma-separated); unset allows any. */
  WS_ALLOWED_ORIGINS: Origins.optional(),
});
export type WsFanoutConfig = z.output<typeof WsFanoutConfig>;

export function loadWsFanoutConfig(environment: Env): WsFanoutConfig {
  return loadConfig(WsFanoutConfig, environment);
}
