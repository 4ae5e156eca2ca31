import { topics, type ApiHealthData, type Envelope } from '@switchyard/events';
import { quoteIdent, type PositionedEvent, type Projection, type TableMap } from './types.js';

interface HealthRow extends ApiHealthData {
  event_id: string;
}

/** The latest observation per API (by `checkedAt`, the later record of equals); history keeps every change. */
export function latestHealth(events: readonly Envelope[]): HealthRow[] {
  const latest = new Map<string, HealthRow>();
  for (const event of events) {
    const data = event.data as ApiHealthData;
    const held = latest.get(data.api);
    if (held === undefined || data.checkedAt >= held.checkedAt) latest.set(data.api, { ...data, event_id: event.id });
  }
  return [...latest.values()];
}

const COLUMNS = `api text, status text, previous text, since timestamptz, "checkedAt" timestamptz, "latencyMs" double precision,
  "httpStatus" integer, reason text, "consecutiveFailures" integer, event_id text`;

function upsertCurrentSql(table: string): string {
  return `
INSERT INTO ${quoteIdent(table)} AS t (api, status, since, checked_at, latency_ms, http_status, reason, consecutive_failures, last_event_id)
SELECT api, status, since, "checkedAt", "latencyMs", "httpStatus", reason, "consecutiveFailures", event_id
FROM jsonb_to_recordset($1::jsonb) AS r(${COLUMNS})
ON CONFLICT (api) DO UPDATE SET
  status = excluded.status, since = excluded.since, checked_at = excluded.checked_at, latency_ms = excluded.latency_ms,
  http_status = excluded.http_status, reason = excluded.reason, consecutive_failures = excluded.consecutive_failures,
  last_event_id = excluded.last_event_id
WHERE excluded.checked_at >= t.checked_at`;
}

function insertHistorySql(table: string): string {
  return `
INSERT INTO ${quoteIdent(table)} (api, since, status, previous, checked_at, latency_ms, http_status, reason, consecutive_failures, event_id)
SELECT api, since, status, previous, "checkedAt", "latencyMs", "httpStatus", reason, "consecutiveFailures", event_id
FROM jsonb_to_recordset($1::jsonb) AS r(${COLUMNS})
ON CONFLICT (api, since) DO NOTHING`;
}

type ApiHealthTables = 'api_health' | 'api_health_history';

export const apiHealthProjection: Projection<ApiHealthTables> = {
  name: 'api_health',
  topics: [topics.apiHealth],
  tables: { api_health: 'api_health', api_health_history: 'api_health_history' },
  statements(events: readonly PositionedEvent[], tables: TableMap<ApiHealthTables>) {
    if (events.length === 0) return [];
    const all = events.map(({ event }) => ({ ...(event.data as ApiHealthData), event_id: event.id }));
    return [
      { text: upsertCurrentSql(tables.api_health), values: [JSON.stringify(latestHealth(events.map((e) => e.event)))] },
      { text: insertHistorySql(tables.api_health_history), values: [JSON.stringify(all)] },
    ];
  },
};
