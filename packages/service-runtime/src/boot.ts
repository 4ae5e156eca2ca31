import { describeConfig, loadConfigOrExit } from './config.js';
import { Lifecycle } from './lifecycle.js';
import { createLogger, type Logger } from './logger.js';
import { createMetricsRegistry, type Registry } from './metrics.js';

export interface Booted<C> {
  readonly config: C;
  readonly logger: Logger;
  readonly lifecycle: Lifecycle;
  readonly registry: Registry;
}

/**
 * The first lines of every service's `main.ts`: load the config (or exit naming the bad variables), then the JSON
 * logger at the configured level, the lifecycle with its signal handlers, and the metrics registry; logs the config
 * with its secrets redacted.
 */
export function bootService<C extends { LOG_LEVEL: string }>(
  service: string,
  load: () => C,
  context: Record<string, unknown> = {},
): Booted<C> {
  const config = loadConfigOrExit(service, load);
  const logger = createLogger({ service, level: config.LOG_LEVEL });
  const lifecycle = new Lifecycle(logger);
  lifecycle.installSignalHandlers();
  logger.info({ config: describeConfig(config), ...context }, 'starting');
  return { config, logger, lifecycle, registry: createMetricsRegistry(service) };
}
