-- The sync worker processes (and switchyard-sync rebuilds) running against this database, one row per process. A
-- process heartbeats seen_at and deletes its row when it stops; a row not seen for the lease belongs to a process
-- that is gone. Two deployments (another Kafka cluster or topic prefix) must not write into one database: their
-- positions count in different logs and their tables would mix (see instances.ts).
CREATE TABLE sync_instances (
  instance_id    text        PRIMARY KEY,
  kafka_cluster  text        NOT NULL,
  topic_prefix   text        NOT NULL,
  group_id       text        NOT NULL,
  host           text        NOT NULL,
  pid            integer     NOT NULL,
  started_at     timestamptz NOT NULL DEFAULT now(),
  seen_at        timestamptz NOT NULL DEFAULT now()
);
