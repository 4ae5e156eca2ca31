import { DEFAULT_TOPIC_PREFIX } from '@switchyard/events';
import { z } from 'zod';
import { RuntimeError } from './errors.js';

export type Env = Readonly<Record<string, string | undefined>>;

export interface ConfigProblem {
  readonly variable: string;
  readonly message: string;
}

/**
 * Checks the environment against one schema whose keys are the variable names, collecting every problem. Pure:
 * takes the environment as an argument, so tests pass a plain object.
 */
export function checkConfig<S extends z.ZodObject>(
  schema: S,
  env: Env,
): { ok: true; value: z.output<S> } | { ok: false; problems: ConfigProblem[] } {
  const present: Record<string, string> = {};
  for (const key of Object.keys(schema.shape)) {
    const value = env[key];
    // An empty variable is treated as unset, as shells and compose files produce them easily.
    if (value !== undefined && value !== '') present[key] = value;
  }
  const parsed = schema.safeParse(present);
  if (parsed.success) return { ok: true, value: parsed.data };
  return {
    ok: false,
    problems: parsed.error.issues.map((issue) => {
      const variable = issue.path.length > 0 ? String(issue.path[0]) : '(environment)';
      const missing = issue.code === 'invalid_type' && present[variable] === undefined;
      return { variable, message: missing ? 'required but not set' : issue.message };
    }),
  };
}

/** The one error for a bad configuration: every problem on its own line, each naming its variable. */
export function configError(problems: readonly ConfigProblem[]): RuntimeError {
  return new RuntimeError('RT_CONFIG_INVALID', `invalid configuration:\n  ${problems.map((problem) => `${problem.variable}: ${problem.message}`).join('\n  ')}`, {
    details: { variables: problems.map((problem) => problem.variable) },
  });
}

/** Parses the environment with one schema; throws RT_CONFIG_INVALID naming every bad variable at once. */
export function loadConfig<S extends z.ZodObject>(schema: S, env: Env): z.output<S> {
  const checked = checkConfig(schema, env);
  if (checked.ok) return checked.value;
  throw configError(checked.problems);
}

/** Building blocks for service config schemas. */
export const env = {
  port: (fallback: number) => z.coerce.number().int().min(0).max(65535).default(fallback),
  host: () => z.string().default('0.0.0.0'),
  logLevel: () => z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  /** Comma-separated host:port list. */
  brokers: () =>
    z
      .string()
      .transform((value) => value.split(',').map((broker) => broker.trim()).filter(Boolean))
      .pipe(z.array(z.string().regex(/^[^\s:]+:\d{1,5}$/, 'expected host:port[,host:port…]')).min(1)),
  topicPrefix: () =>
    z
      .string()
      .regex(/^[A-Za-z0-9._-]*$/, 'letters, digits, dot, dash and underscore only')
      .default(DEFAULT_TOPIC_PREFIX),
  url: () => z.url({ protocol: /^https?$/ }),
  postgresUrl: () => z.url({ protocol: /^postgres(ql)?$/, error: 'expected postgres://user@host:port/database' }),
  milliseconds: (fallback: number) => z.coerce.number().int().min(1).default(fallback),
  positiveInt: (fallback: number) => z.coerce.number().int().min(1).default(fallback),
  boolean: (fallback: boolean) =>
    z
      .enum(['true', 'false', '1', '0', 'yes', 'no'])
      .default(fallback ? 'true' : 'false')
      .transform((value) => value === 'true' || value === '1' || value === 'yes'),
  /** A secret: never logged; `describeConfig` shows it as `[redacted]`. */
  secret: () => z.string().min(1).meta({ secret: true }),
};

const SECRET_NAME = /(TOKEN|SECRET|PASSWORD|API_KEY|PRIVATE_KEY|CREDENTIAL)/i;

function describeValue(value: unknown): unknown {
  if (typeof value === 'string' && /^[a-z][a-z0-9+.-]*:\/\/[^/]*:[^/]*@/i.test(value)) {
    const url = new URL(value);
    url.password = '';
    return url.toString();
  }
  if (Array.isArray(value)) return value.map(describeValue);
  if (value !== null && typeof value === 'object') {
    const json = (value as { toJSON?: unknown }).toJSON;
    return describeConfig(typeof json === 'function' ? (json.call(value) as Record<string, unknown>) : (value as Record<string, unknown>));
  }
  return value;
}

/** The config as it may be logged: secrets replaced (at any depth), passwords removed from URLs. */
export function describeConfig(config: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(config)) {
    if (typeof value === 'function') continue;
    out[key] = SECRET_NAME.test(key) ? '[redacted]' : describeValue(value);
  }
  return out;
}

/**
 * For `main.ts`: loads config or, when it is invalid, writes one JSON log line naming every bad variable and
 * exits with code 1 (the logger's level is itself config, so it cannot be used yet).
 */
export function loadConfigOrExit<T>(service: string, load: () => T): T {
  try {
    return load();
  } catch (error) {
    const line = {
      level: 'fatal',
      time: new Date().toISOString(),
      service,
      code: (error as { code?: string }).code ?? 'RT_CONFIG_INVALID',
      msg: (error as Error).message,
    };
    process.stderr.write(`${JSON.stringify(line)}\n`);
    process.exit(1);
  }
}
