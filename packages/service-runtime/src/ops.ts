import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import { createHttpServer } from './http.js';

/** A dependency the service needs to do its work. Throws (or rejects) with the reason when it is not usable. */
export interface ReadinessCheck {
  readonly name: string;
  check(): Promise<void> | void;
}

export interface OpsOptions {
  readonly checks: readonly ReadinessCheck[];
  readonly registry: Registry;
  /** When true, /readyz answers 503 regardless of checks (set during shutdown). */
  readonly isStopping: () => boolean;
  readonly checkTimeoutMs?: number;
}

type CheckResult = { ok: true; ms: number } | { ok: false; ms: number; reason: string };

async function runCheck(check: ReadinessCheck, timeoutMs: number): Promise<CheckResult> {
  const started = performance.now();
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      Promise.resolve().then(() => check.check()),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
      }),
    ]);
    return { ok: true, ms: Math.round(performance.now() - started) };
  } catch (error) {
    return { ok: false, ms: Math.round(performance.now() - started), reason: (error as Error).message };
  } finally {
    clearTimeout(timer);
  }
}

/**
 * - `GET /healthz`: the process is alive and serving (liveness; never checks dependencies).
 * - `GET /readyz`: 200 only when every dependency check passes, else 503 with each check's reason.
 * - `GET /metrics`: Prometheus text format.
 */
export function registerOps(app: FastifyInstance, options: OpsOptions): void {
  const timeoutMs = options.checkTimeoutMs ?? 2000;
  app.get('/healthz', async () => ({ status: 'ok', uptimeSeconds: Math.round(process.uptime()) }));
  app.get('/readyz', async (_request, reply) => {
    const results = await Promise.all(options.checks.map((check) => runCheck(check, timeoutMs)));
    const checks = Object.fromEntries(options.checks.map((check, index) => [check.name, results[index]]));
    const stopping = options.isStopping();
    const ready = !stopping && results.every((result) => result.ok);
    return reply.code(ready ? 200 : 503).send({ status: ready ? 'ready' : stopping ? 'stopping' : 'not_ready', checks });
  });
  app.get('/metrics', async (_request, reply) => {
    const body = await options.registry.metrics();
    return reply.header('content-type', options.registry.contentType).send(body);
  });
}

/** What every service's HTTP app is built from. */
export interface ServiceAppOptions {
  readonly logger: Logger;
  readonly checks: readonly ReadinessCheck[];
  readonly registry: Registry;
  readonly isStopping: () => boolean;
  readonly bodyLimit?: number;
  /**
   * Installed before any route: checks every request's credentials (packages/auth `guard`). Required, so no
   * service has an app without one.
   */
  readonly guard: (app: FastifyInstance) => void;
}

/** A service's fastify app with the ops endpoints registered and shutdown answered (RT_SHUTTING_DOWN). */
export function createServiceApp(options: ServiceAppOptions): FastifyInstance {
  const app = createHttpServer({
    logger: options.logger,
    isStopping: options.isStopping,
    ...(options.bodyLimit === undefined ? {} : { bodyLimit: options.bodyLimit }),
  });
  options.guard(app);
  registerOps(app, { checks: options.checks, registry: options.registry, isStopping: options.isStopping });
  return app;
}
