-- One row per rebuild: who asked (a command id when it came over Kafka), how it went.
CREATE TABLE projection_rebuilds (
  id           bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  projection   text        NOT NULL,
  command_id   text        UNIQUE,
  status       text        NOT NULL CHECK (status IN ('running', 'succeeded', 'failed')),
  started_at   timestamptz NOT NULL DEFAULT now(),
  finished_at  timestamptz,
  events       bigint,
  error        text
);
