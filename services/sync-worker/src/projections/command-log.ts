import { commandResultSchemas, topics, type CommandStatus, type Envelope } from '@switchyard/events';
import type { z } from 'zod';
import { quoteIdent, type PositionedEvent, type Projection, type TableMap } from './types.js';

type ResultEvent = z.output<(typeof commandResultSchemas)[keyof typeof commandResultSchemas]>;
type LogStatus = 'requested' | CommandStatus;

/** Status only moves forward: requested → accepted → a terminal status; the first terminal status stays. */
export const STATUS_RANK: Readonly<Record<LogStatus, number>> = {
  requested: 0,
  accepted: 1,
  succeeded: 2,
  failed: 2,
  rejected: 2,
};

export interface CommandLogRow {
  command_id: string;
  command_type: string;
  status: LogStatus;
  correlation_id: string;
  target: string | null;
  connection: string | null;
  input: unknown;
  requested_at: string | null;
  entity_key: string | null;
  entity_version: string | null;
  error_code: string | null;
  error_message: string | null;
  error_field: string | null;
  attempts: number | null;
  duration_ms: number | null;
  updated_at: string;
  /** CloudEvents Auth Context of the command (`api_key` and the key's id for a command taken over HTTP). */
  auth_type: string | null;
  auth_id: string | null;
}

interface TimelineRow {
  command_id: string;
  status: CommandStatus;
  at: string;
  event_id: string;
  error_code: string | null;
}

function isResult(event: Envelope): event is ResultEvent {
  return Object.hasOwn(commandResultSchemas, event.type);
}

function fromCommand(event: Envelope): CommandLogRow {
  const data = event.data as { connection: string; input: unknown };
  return {
    command_id: event.id,
    command_type: event.type,
    status: 'requested',
    correlation_id: event.correlationid,
    target: event.subject ?? null,
    connection: data.connection,
    input: data.input,
    requested_at: event.time,
    entity_key: null,
    entity_version: null,
    error_code: null,
    error_message: null,
    error_field: null,
    attempts: null,
    duration_ms: null,
    updated_at: event.time,
    auth_type: event.authtype ?? null,
    auth_id: event.authid ?? null,
  };
}

function fromResult(event: ResultEvent): CommandLogRow {
  const { data } = event;
  return {
    command_id: data.commandId,
    command_type: data.commandType,
    status: data.status,
    correlation_id: event.correlationid,
    target: null,
    connection: null,
    input: null,
    requested_at: null,
    entity_key: data.entity?.key ?? null,
    entity_version: data.entity?.version ?? null,
    error_code: data.error?.code ?? null,
    error_message: data.error?.message ?? null,
    error_field: data.error?.field ?? null,
    attempts: data.attempts ?? null,
    duration_ms: data.durationMs ?? null,
    updated_at: event.time,
    auth_type: event.authtype ?? null,
    auth_id: event.authid ?? null,
  };
}

function hasAuth(row: Pick<CommandLogRow, 'auth_type' | 'auth_id'>): boolean {
  return row.auth_type !== null || row.auth_id !== null;
}

/**
 * Whose Auth Context a merged row keeps, as a pair: the command's when it carries one (a row holds the command once
 * `requested_at` is set), else whatever the row already holds, else the newcomer's (a result repeating the
 * command's). A value once held is never replaced by none.
 */
function authSource(current: CommandLogRow, next: CommandLogRow): CommandLogRow {
  if (next.requested_at !== null && hasAuth(next)) return next;
  return hasAuth(current) ? current : next;
}

/**
 * Merges what is known about one command, in any order: the request's details from the command, and from results
 * the highest-ranked status (first terminal wins) with its outcome fields. Pure; the SQL below does the same
 * against the stored row.
 */
export function mergeCommandLog(current: CommandLogRow | undefined, next: CommandLogRow): CommandLogRow {
  if (current === undefined) return next;
  const advances = STATUS_RANK[next.status] > STATUS_RANK[current.status];
  const outcome = advances ? next : current;
  const auth = authSource(current, next);
  return {
    command_id: current.command_id,
    // The command itself names its type; a result only repeats it (and may carry any text on a rejection).
    command_type: next.status === 'requested' ? next.command_type : current.command_type,
    status: outcome.status,
    correlation_id: current.correlation_id,
    target: current.target ?? next.target,
    connection: current.connection ?? next.connection,
    input: current.input ?? next.input,
    requested_at: current.requested_at ?? next.requested_at,
    entity_key: outcome.entity_key ?? current.entity_key ?? next.entity_key,
    entity_version: outcome.entity_version ?? current.entity_version ?? next.entity_version,
    error_code: outcome.error_code,
    error_message: outcome.error_message,
    error_field: outcome.error_field,
    attempts: outcome.attempts ?? current.attempts,
    duration_ms: outcome.duration_ms ?? current.duration_ms,
    updated_at: advances ? next.updated_at : current.updated_at,
    auth_type: auth.auth_type,
    auth_id: auth.auth_id,
  };
}

export function commandLogRows(events: readonly Envelope[]): { log: CommandLogRow[]; timeline: TimelineRow[] } {
  const log = new Map<string, CommandLogRow>();
  const timeline: TimelineRow[] = [];
  for (const event of events) {
    const row = isResult(event) ? fromResult(event) : fromCommand(event);
    log.set(row.command_id, mergeCommandLog(log.get(row.command_id), row));
    if (isResult(event)) {
      timeline.push({
        command_id: event.data.commandId,
        status: event.data.status,
        at: event.time,
        event_id: event.id,
        error_code: event.data.error?.code ?? null,
      });
    }
  }
  return { log: [...log.values()], timeline };
}

const RANK_SQL = (column: string) =>
  `CASE ${column} WHEN 'requested' THEN 0 WHEN 'accepted' THEN 1 ELSE 2 END`;

/** `authSource` in SQL: which row's Auth Context pair the upsert keeps. */
const AUTH_SQL = (column: 'auth_type' | 'auth_id') => `CASE
    WHEN excluded.requested_at IS NOT NULL AND (excluded.auth_type IS NOT NULL OR excluded.auth_id IS NOT NULL) THEN excluded.${column}
    WHEN t.auth_type IS NOT NULL OR t.auth_id IS NOT NULL THEN t.${column}
    ELSE excluded.${column} END`;

function upsertLogSql(table: string): string {
  const t = quoteIdent(table);
  return `
INSERT INTO ${t} AS t (command_id, command_type, status, correlation_id, target, connection, input, requested_at,
  entity_key, entity_version, error_code, error_message, error_field, attempts, duration_ms, updated_at, auth_type, auth_id)
SELECT * FROM jsonb_to_recordset($1::jsonb) AS r(command_id text, command_type text, status text, correlation_id text,
  target text, connection text, input jsonb, requested_at timestamptz, entity_key text, entity_version text,
  error_code text, error_message text, error_field text, attempts integer, duration_ms double precision,
  updated_at timestamptz, auth_type text, auth_id text)
ON CONFLICT (command_id) DO UPDATE SET
  auth_type = ${AUTH_SQL('auth_type')},
  auth_id = ${AUTH_SQL('auth_id')},
  command_type = CASE WHEN excluded.status = 'requested' THEN excluded.command_type ELSE t.command_type END,
  target = COALESCE(t.target, excluded.target),
  connection = COALESCE(t.connection, excluded.connection),
  input = COALESCE(t.input, excluded.input),
  requested_at = COALESCE(t.requested_at, excluded.requested_at),
  status = CASE WHEN ${RANK_SQL('excluded.status')} > ${RANK_SQL('t.status')} THEN excluded.status ELSE t.status END,
  entity_key = CASE WHEN ${RANK_SQL('excluded.status')} > ${RANK_SQL('t.status')}
    THEN COALESCE(excluded.entity_key, t.entity_key) ELSE COALESCE(t.entity_key, excluded.entity_key) END,
  entity_version = CASE WHEN ${RANK_SQL('excluded.status')} > ${RANK_SQL('t.status')}
    THEN COALESCE(excluded.entity_version, t.entity_version) ELSE COALESCE(t.entity_version, excluded.entity_version) END,
  error_code = CASE WHEN ${RANK_SQL('excluded.status')} > ${RANK_SQL('t.status')} THEN excluded.error_code ELSE t.error_code END,
  error_message = CASE WHEN ${RANK_SQL('excluded.status')} > ${RANK_SQL('t.status')} THEN excluded.error_message ELSE t.error_message END,
  error_field = CASE WHEN ${RANK_SQL('excluded.status')} > ${RANK_SQL('t.status')} THEN excluded.error_field ELSE t.error_field END,
  attempts = CASE WHEN ${RANK_SQL('excluded.status')} > ${RANK_SQL('t.status')} THEN COALESCE(excluded.attempts, t.attempts) ELSE t.attempts END,
  duration_ms = CASE WHEN ${RANK_SQL('excluded.status')} > ${RANK_SQL('t.status')} THEN COALESCE(excluded.duration_ms, t.duration_ms) ELSE t.duration_ms END,
  updated_at = CASE WHEN ${RANK_SQL('excluded.status')} > ${RANK_SQL('t.status')} THEN excluded.updated_at ELSE t.updated_at END`;
}

function insertTimelineSql(table: string): string {
  return `
INSERT INTO ${quoteIdent(table)} (command_id, status, at, event_id, error_code)
SELECT * FROM jsonb_to_recordset($1::jsonb) AS r(command_id text, status text, at timestamptz, event_id text, error_code text)
ON CONFLICT (command_id, status) DO NOTHING`;
}

type CommandLogTables = 'command_log' | 'command_timeline';

export const commandLogProjection: Projection<CommandLogTables> = {
  name: 'command_log',
  topics: [topics.commands, topics.commandResults],
  undecodableHandledElsewhere: [topics.commands],
  tables: { command_log: 'command_log', command_timeline: 'command_timeline' },
  statements(events: readonly PositionedEvent[], tables: TableMap<CommandLogTables>) {
    if (events.length === 0) return [];
    const { log, timeline } = commandLogRows(events.map((positioned) => positioned.event));
    const statements = [{ text: upsertLogSql(tables.command_log), values: [JSON.stringify(log)] }];
    if (timeline.length > 0) statements.push({ text: insertTimelineSql(tables.command_timeline), values: [JSON.stringify(timeline)] });
    return statements;
  },
};
