import { pino, type Logger } from 'pino';

export type { Logger };

/**
 * Paths pino censors wherever they appear in a log line. Secrets also never reach log calls by design (config is
 * logged through `describeConfig`, HTTP clients log no headers); this is the second line.
 */
const REDACT = [
  'authorization',
  '*.authorization',
  '*.headers.authorization',
  '*.headers["x-hub-signature-256"]',
  '*.headers["stripe-signature"]',
  '*.headers["x-slack-signature"]',
  'token',
  '*.token',
  'secret',
  '*.secret',
  'password',
  '*.password',
  'apiKey',
  '*.apiKey',
];

/** One JSON line per event on stdout: `level`, `time` (ISO), `service`, `msg`, then fields. */
export function createLogger(options: { service: string; level: string }): Logger {
  return pino({
    level: options.level,
    base: { service: options.service },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label) => ({ level: label }) },
    redact: { paths: REDACT, censor: '[redacted]' },
  });
}
