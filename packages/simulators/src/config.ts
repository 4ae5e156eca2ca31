import { z } from 'zod';
import { MAX_DELAY_MS } from './github/faults.js';

/** The repository every simulator run has, for the demo stack and tests. */
export const DEFAULT_REPO = 'acme/widgets';

const FullName = z.string().regex(/^[A-Za-z0-9_.-]{1,100}\/[A-Za-z0-9_.-]{1,100}$/, 'expected owner/name');

export const SimulatorConfig = z.object({
  GITHUB_SIM_PORT: z.coerce.number().int().min(0).max(65535).default(4010),
  GITHUB_SIM_HOST: z.string().min(1).default('127.0.0.1'),
  /** The token the simulated API accepts. Required: a silent default would hide a misconfigured stack. */
  GITHUB_SIM_TOKEN: z.string().regex(/^\S+$/, 'no whitespace'),
  /** Extra repositories besides acme/widgets: `owner/name[,owner/name…]`. */
  GITHUB_SIM_REPOS: z
    .string()
    .transform((value) => value.split(',').map((entry) => entry.trim()).filter(Boolean))
    .pipe(z.array(FullName))
    .default([]),
  GITHUB_SIM_RATE_LIMIT: z.coerce.number().int().min(1).default(5000),
  /** How long the simulated GitHub works on a request before answering with its timeout (GitHub: 10 s). */
  GITHUB_SIM_SERVER_TIMEOUT_MS: z.coerce.number().int().min(1).max(MAX_DELAY_MS).default(10000),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
});
export type SimulatorConfig = z.output<typeof SimulatorConfig>;

/**
 * Parses the CLI's environment. Pure (the environment is an argument); every problem is reported at once, each
 * naming its variable — and never its value, since one of them is a token.
 */
export function loadSimulatorConfig(env: Readonly<Record<string, string | undefined>>): SimulatorConfig {
  const present: Record<string, string> = {};
  for (const key of Object.keys(SimulatorConfig.shape)) {
    const value = env[key];
    if (value !== undefined && value !== '') present[key] = value;
  }
  const parsed = SimulatorConfig.safeParse(present);
  if (parsed.success) return parsed.data;
  const problems = parsed.error.issues.map((issue) => {
    const variable = String(issue.path[0] ?? '(environment)');
    return `${variable}: ${present[variable] === undefined && issue.code === 'invalid_type' ? 'required but not set' : issue.message}`;
  });
  throw new Error(`invalid configuration:\n  ${problems.join('\n  ')}`);
}
