import { env, loadConfig, type Env } from '@switchyard/service-runtime';
import { z } from 'zod';

/** `github=http://127.0.0.1:4010/zen,stripe=https://…` → [{ api, url }]. */
const Targets = z
  .string()
  .transform((value) => value.split(',').map((entry) => entry.trim()).filter(Boolean))
  .pipe(
    z
      .array(
        z.string().transform((entry, context) => {
          const eq = entry.indexOf('=');
          const api = entry.slice(0, eq).trim();
          const url = entry.slice(eq + 1).trim();
          if (eq <= 0 || !/^[a-z0-9][a-z0-9_-]*$/.test(api) || !URL.canParse(url) || !/^https?:/.test(url)) {
            context.addIssue({ code: 'custom', message: `expected api=http(s)://url, got "${entry}"` });
            return z.NEVER;
          }
          return { api, url };
        }),
      )
      .min(1, 'name at least one api=url')
      .refine((targets) => new Set(targets.map((target) => target.api)).size === targets.length, 'api names must be unique'),
  );

export const HealthMonitorConfig = z.object({
  PORT: env.port(8082),
  HOST: env.host(),
  LOG_LEVEL: env.logLevel(),
  KAFKA_BROKERS: env.brokers(),
  TOPIC_PREFIX: env.topicPrefix(),
  /** Which APIs to probe and where: `name=url` pairs, comma-separated. */
  HEALTH_TARGETS: Targets,
  HEALTH_INTERVAL_MS: env.milliseconds(10000),
  HEALTH_TIMEOUT_MS: env.milliseconds(2000),
  /** A successful probe slower than this makes the API `degraded`. */
  HEALTH_DEGRADED_LATENCY_MS: env.milliseconds(1000),
  /** This many failed probes in a row make the API `down` (fewer make it `degraded`). */
  HEALTH_FAILURE_THRESHOLD: env.positiveInt(2),
});
export type HealthMonitorConfig = z.output<typeof HealthMonitorConfig>;

export function loadHealthMonitorConfig(environment: Env): HealthMonitorConfig {
  return loadConfig(HealthMonitorConfig, environment);
}
