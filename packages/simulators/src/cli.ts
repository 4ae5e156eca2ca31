#!/usr/bin/env node
import { DEFAULT_REPO, loadSimulatorConfig, type SimulatorConfig } from './config.js';
import { createGithubSimulator } from './github/simulator.js';

/**
 * `switchyard-simulators`: the GitHub simulator on GITHUB_SIM_HOST:GITHUB_SIM_PORT for the local stack. JSON log
 * lines on stdout; SIGTERM/SIGINT close the server (in-flight requests finish) and exit 0.
 */

let config: SimulatorConfig;
try {
  config = loadSimulatorConfig(process.env);
} catch (error) {
  process.stderr.write(
    `${JSON.stringify({ level: 'fatal', time: new Date().toISOString(), service: 'simulators', msg: (error as Error).message })}\n`,
  );
  process.exit(1);
}

const repos = [...new Set([DEFAULT_REPO, ...config.GITHUB_SIM_REPOS])];
const simulator = createGithubSimulator({
  tokens: [config.GITHUB_SIM_TOKEN],
  repos,
  rateLimit: config.GITHUB_SIM_RATE_LIMIT,
  serverTimeoutMs: config.GITHUB_SIM_SERVER_TIMEOUT_MS,
  logger: {
    level: config.LOG_LEVEL,
    base: { service: 'simulators', simulator: 'github' },
    // The services' log shape: ISO time and the level's name.
    timestamp: () => `,"time":"${new Date().toISOString()}"`,
    formatters: { level: (label: string) => ({ level: label }) },
    // Request logs carry no headers by default; this keeps it so if a serializer ever adds them.
    redact: { paths: ['req.headers.authorization', 'headers.authorization'], censor: '[redacted]' },
  },
});
const { log } = simulator.app;

let stopping = false;
function stop(signal: string): void {
  if (stopping) return;
  stopping = true;
  log.info({ signal }, 'shutting down');
  const timer = setTimeout(() => {
    log.error('shutdown timed out; exiting');
    process.exit(1);
  }, 10000);
  timer.unref();
  simulator.close().then(
    () => {
      log.info('stopped');
      process.exit(0);
    },
    (error: unknown) => {
      log.error({ err: error }, 'close failed');
      process.exit(1);
    },
  );
}
process.once('SIGTERM', () => stop('SIGTERM'));
process.once('SIGINT', () => stop('SIGINT'));

try {
  const url = await simulator.listen({ port: config.GITHUB_SIM_PORT, host: config.GITHUB_SIM_HOST });
  log.info({ url, repos }, 'github simulator listening');
} catch (error) {
  log.fatal({ err: error }, 'could not start');
  process.exit(1);
}
