import { isSwitchyardError, issuePath } from '@switchyard/events';
import Fastify, { LogController, type FastifyError, type FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import type { z } from 'zod';
import { RuntimeError } from './errors.js';

export interface ErrorBody {
  error: { code: string; message: string; field?: string; retriable: boolean };
}

/** The first failing field of a zod error as a dotted path (`input.labels[2]`), and its message. */
export function firstIssue(error: z.ZodError, prefix = ''): { field: string; message: string } {
  const issue = error.issues[0];
  const path = issuePath(issue?.path ?? []);
  const field = prefix && path ? `${prefix}.${path}` : prefix || path;
  return { field, message: issue?.message ?? 'invalid' };
}

/**
 * Text that may spell a key JSON.parse keeps as an own property but a later merge turns into a prototype write
 * (`__proto__`, `constructor.prototype`), directly or through `\u` escapes; only such bodies are walked.
 */
const MAY_HOLD_FORBIDDEN_KEY = /__proto__|constructor|\\u/;

function forbiddenKeyPath(value: unknown, path: string): string | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  if (Array.isArray(value)) {
    for (let index = 0; index < value.length; index += 1) {
      const found = forbiddenKeyPath(value[index], `${path}[${index}]`);
      if (found !== undefined) return found;
    }
    return undefined;
  }
  const record = value as Record<string, unknown>;
  if (Object.prototype.hasOwnProperty.call(record, '__proto__')) return path ? `${path}.__proto__` : '__proto__';
  const ctor = Object.prototype.hasOwnProperty.call(record, 'constructor') ? record['constructor'] : undefined;
  if (typeof ctor === 'object' && ctor !== null && Object.prototype.hasOwnProperty.call(ctor, 'prototype')) {
    return path ? `${path}.constructor.prototype` : 'constructor.prototype';
  }
  for (const key of Object.keys(record)) {
    const found = forbiddenKeyPath(record[key], path ? `${path}.${key}` : key);
    if (found !== undefined) return found;
  }
  return undefined;
}

/**
 * Parses an `application/json` body, saying what is wrong instead of fastify's one "not valid JSON" for every case:
 * an empty body, a syntax error (with the parser's own position), or a `__proto__` / `constructor.prototype` key,
 * named by its path, which is refused because merging such an object can rewrite prototypes.
 */
export function parseJsonBody(text: string): unknown {
  if (text.trim() === '') throw new RuntimeError('RT_REQUEST_INVALID', 'the body is empty but content-type is application/json', { details: { field: 'body' } });
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new RuntimeError('RT_REQUEST_INVALID', `the body is not valid JSON: ${(error as Error).message}`, { details: { field: 'body' } });
  }
  if (MAY_HOLD_FORBIDDEN_KEY.test(text)) {
    const path = forbiddenKeyPath(value, '');
    if (path !== undefined) {
      const key = path.endsWith('__proto__') ? '__proto__' : 'constructor.prototype';
      throw new RuntimeError('RT_REQUEST_INVALID', `a key spelled ${key} is refused: merging it could rewrite object prototypes`, { details: { field: path } });
    }
  }
  return value;
}

/** The field a fastify-raised 4xx is about: the content type for a media-type refusal, otherwise the body. */
function fastifyField(error: FastifyError): string {
  return error.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE' ? 'content-type' : 'body';
}

function statusOf(error: unknown): number {
  if (isSwitchyardError(error)) {
    if (error.httpStatus !== undefined) return error.httpStatus;
    if (error.code.endsWith('_NOT_FOUND')) return 404;
    if (error.code === 'RT_SHUTTING_DOWN') return 503;
    if (error.code.endsWith('_INVALID') || error.code.endsWith('_REJECTED')) return 400;
    return error.retriable ? 503 : 500;
  }
  const status = (error as FastifyError).statusCode;
  return typeof status === 'number' && status >= 400 && status < 600 ? status : 500;
}

/**
 * A fastify instance with our logger, request ids and one error shape for every failure:
 * `{ error: { code, message, field?, retriable } }`.
 */
export function createHttpServer(options: {
  logger: Logger;
  bodyLimit?: number;
  /** While true, every route but the ops endpoints answers 503 RT_SHUTTING_DOWN. */
  isStopping?: () => boolean;
}): FastifyInstance {
  const app = Fastify({
    loggerInstance: options.logger,
    // One `request` line per response comes from the onResponse hook below; fastify's own pair is off.
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: options.bodyLimit ?? 1048576,
    requestIdHeader: 'x-request-id',
    return503OnClosing: true,
  }) as unknown as FastifyInstance;

  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (_request, text, done) => {
    try {
      done(null, parseJsonBody(text as string));
    } catch (error) {
      done(error as Error, undefined);
    }
  });

  const isOps = (url: string) => url.startsWith('/healthz') || url.startsWith('/readyz') || url.startsWith('/metrics');
  const isStopping = options.isStopping;
  if (isStopping) {
    app.addHook('onRequest', async (request) => {
      if (isStopping() && !isOps(request.url)) {
        throw new RuntimeError('RT_SHUTTING_DOWN', 'the service is shutting down; retry against another instance');
      }
    });
  }

  app.addHook('onResponse', (request, reply, done) => {
    if (!isOps(request.url)) {
      request.log.info(
        { method: request.method, url: request.url, status: reply.statusCode, ms: Math.round(reply.elapsedTime) },
        'request',
      );
    }
    done();
  });

  app.setNotFoundHandler((request, reply) => {
    const body: ErrorBody = {
      error: { code: 'RT_NOT_FOUND', message: `no route for ${request.method} ${request.url}`, retriable: false },
    };
    void reply.code(404).send(body);
  });

  app.setErrorHandler((error, request, reply) => {
    const status = statusOf(error);
    if (status >= 500) request.log.error({ err: error }, 'request failed');
    let body: ErrorBody;
    if (isSwitchyardError(error)) {
      const { field } = error;
      body = { error: { code: error.code, message: error.message, retriable: error.retriable } };
      if (field !== undefined) body.error.field = field;
    } else if (status < 500) {
      // fastify's own 4xx: another content type, body too large, a bad content-length.
      body = { error: { code: 'RT_REQUEST_INVALID', message: (error as Error).message, field: fastifyField(error as FastifyError), retriable: false } };
    } else {
      body = { error: { code: 'RT_INTERNAL', message: 'internal error', retriable: true } };
    }
    void reply.code(status).send(body);
  });
  return app;
}
