export { bootService } from './boot.js';
export { checkConfig, configError, describeConfig, env, loadConfig, loadConfigOrExit, type ConfigProblem, type Env } from './config.js';
export { RuntimeError, runtimeErrors, type RuntimeErrorCode } from './errors.js';
export { createHttpServer, firstIssue, type ErrorBody } from './http.js';
export { Lifecycle } from './lifecycle.js';
export { createLogger, type Logger } from './logger.js';
export { createMetricsRegistry, type Registry } from './metrics.js';
export { createServiceApp, type ReadinessCheck, type ServiceAppOptions } from './ops.js';
export type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
