/**
 * Turns the services' JSON log lines (pino: `level`, `time`, `service`, `msg`, then fields) into one readable line
 * each, prefixed with the process name. Errors keep their message and stack so a failure is visible in the
 * launcher's output. Lines that are not JSON are passed through behind the prefix.
 */

export interface LogFormatOptions {
  /** ANSI colours (a terminal). */
  readonly color: boolean;
  /** Width the process-name column is padded to. */
  readonly nameWidth: number;
  /** Each field's value is cut to this many characters. */
  readonly maxFieldChars?: number;
}

const LEVEL_LABELS: Record<string, string> = {
  trace: 'TRACE',
  debug: 'DEBUG',
  info: 'INFO ',
  warn: 'WARN ',
  error: 'ERROR',
  fatal: 'FATAL',
};
const LEVEL_COLORS: Record<string, number> = { trace: 90, debug: 90, info: 32, warn: 33, error: 31, fatal: 35 };
const NAME_COLORS = [36, 35, 34, 33, 32, 96, 95, 94];
/** Shown elsewhere in the line, or noise for a reader. */
const HIDDEN_FIELDS = new Set(['level', 'time', 'service', 'msg', 'pid', 'hostname', 'simulator', 'reqId', 'component']);
/** Too long for one line; a developer looking for them reads the service's own JSON (LOG_LEVEL, or run it alone). */
const SUMMARISED_FIELDS = new Set(['config']);

function paint(color: boolean, code: number, text: string): string {
  return color ? `\u001b[${code}m${text}\u001b[0m` : text;
}

function nameColor(name: string): number {
  let hash = 0;
  for (const char of name) hash = (hash * 31 + char.charCodeAt(0)) >>> 0;
  return NAME_COLORS[hash % NAME_COLORS.length]!;
}

function clock(time: unknown): string {
  const date = typeof time === 'string' || typeof time === 'number' ? new Date(time) : new Date();
  const valid = Number.isNaN(date.getTime()) ? new Date() : date;
  return valid.toISOString().slice(11, 23);
}

function cut(text: string, max: number): string {
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}

function fieldText(value: unknown, max: number): string {
  if (typeof value === 'string') return cut(/[\s"=]/.test(value) ? JSON.stringify(value) : value, max);
  return cut(JSON.stringify(value) ?? String(value), max);
}

interface ErrorLike {
  type?: unknown;
  message?: unknown;
  code?: unknown;
  stack?: unknown;
}

function errorLines(error: ErrorLike, color: boolean): string[] {
  const head = [error.type, error.code].filter((part) => typeof part === 'string').join(' ');
  const message = typeof error.message === 'string' ? error.message : JSON.stringify(error);
  const lines = [`${head ? `${head}: ` : ''}${message}`];
  if (typeof error.stack === 'string') {
    // The first stack line repeats the message; the frames after it say where.
    lines.push(
      ...error.stack
        .split('\n')
        .filter((line) => line.trimStart().startsWith('at '))
        .slice(0, 8)
        .map((line) => line.trim()),
    );
  }
  return lines.map((line, index) => paint(color, 31, `${index === 0 ? '↳ ' : '    '}${line}`));
}

/** One process output line → one or more display lines (more only for errors with a stack). */
export function formatLogLine(name: string, line: string, options: LogFormatOptions): string {
  const prefix = `${paint(options.color, nameColor(name), name.padEnd(options.nameWidth))} │`;
  let record: Record<string, unknown>;
  try {
    const parsed: unknown = JSON.parse(line);
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new Error('not a record');
    record = parsed as Record<string, unknown>;
  } catch {
    return `${prefix} ${line}`;
  }
  const level = typeof record['level'] === 'string' ? record['level'] : 'info';
  const label = paint(options.color, LEVEL_COLORS[level] ?? 37, LEVEL_LABELS[level] ?? level.toUpperCase().padEnd(5));
  const max = options.maxFieldChars ?? 120;
  const fields: string[] = [];
  const errors: ErrorLike[] = [];
  for (const [key, value] of Object.entries(record)) {
    if (HIDDEN_FIELDS.has(key) || value === undefined) continue;
    if ((key === 'err' || key === 'error') && typeof value === 'object' && value !== null) {
      errors.push(value);
      continue;
    }
    fields.push(`${paint(options.color, 2, `${key}=`)}${SUMMARISED_FIELDS.has(key) ? '{…}' : fieldText(value, max)}`);
  }
  const message = typeof record['msg'] === 'string' ? record['msg'] : '';
  const head = [`${paint(options.color, 2, clock(record['time']))} ${prefix} ${label} ${message}`, ...fields].join(' ');
  return [head, ...errors.flatMap((error) => errorLines(error, options.color).map((text) => `${' '.repeat(13)}${text}`))].join('\n');
}

/** Every occurrence of each secret replaced: the launcher's last line of defence for the run's token. */
export function redact(line: string, secrets: readonly string[]): string {
  return secrets.reduce((text, secret) => (secret ? text.replaceAll(secret, '[redacted]') : text), line);
}
