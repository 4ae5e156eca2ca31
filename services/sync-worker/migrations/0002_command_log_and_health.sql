-- Every command, from the request on the commands topic and from its results, with its current status.
CREATE TABLE command_log (
  command_id      text        PRIMARY KEY,
  command_type    text        NOT NULL,
  status          text        NOT NULL CHECK (status IN ('requested', 'accepted', 'succeeded', 'failed', 'rejected')),
  correlation_id  text        NOT NULL,
  target          text,
  connection      text,
  input           jsonb,
  requested_at    timestamptz,
  entity_key      text,
  entity_version  text        COLLATE "C",
  error_code      text,
  error_message   text,
  error_field     text,
  attempts        integer,
  duration_ms     double precision,
  updated_at      timestamptz NOT NULL
);
CREATE INDEX command_log_correlation ON command_log (correlation_id);
CREATE INDEX command_log_status ON command_log (status, updated_at DESC);
CREATE INDEX command_log_entity ON command_log (entity_key) WHERE entity_key IS NOT NULL;

-- One row per status a command went through. (command_id, status) is unique, so a result delivered or produced
-- twice adds nothing.
CREATE TABLE command_timeline (
  command_id  text        NOT NULL,
  status      text        NOT NULL,
  at          timestamptz NOT NULL,
  event_id    text        NOT NULL,
  error_code  text,
  PRIMARY KEY (command_id, status)
);

-- Current health per API, and every change.
CREATE TABLE api_health (
  api                   text        PRIMARY KEY,
  status                text        NOT NULL CHECK (status IN ('up', 'degraded', 'down')),
  since                 timestamptz NOT NULL,
  checked_at            timestamptz NOT NULL,
  latency_ms            double precision,
  http_status           integer,
  reason                text,
  consecutive_failures  integer     NOT NULL,
  last_event_id         text        NOT NULL
);

CREATE TABLE api_health_history (
  api                   text        NOT NULL,
  since                 timestamptz NOT NULL,
  status                text        NOT NULL,
  previous              text        NOT NULL,
  checked_at            timestamptz NOT NULL,
  latency_ms            double precision,
  http_status           integer,
  reason                text,
  consecutive_failures  integer     NOT NULL,
  event_id              text        NOT NULL,
  PRIMARY KEY (api, since)
);
