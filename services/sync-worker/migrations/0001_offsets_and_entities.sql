-- Consumer positions live here, committed in the same transaction as the rows they produced (docs/adr/0002).
CREATE TABLE sync_offsets (
  projection   text        NOT NULL,
  topic        text        NOT NULL,
  partition    integer     NOT NULL,
  next_offset  bigint      NOT NULL,
  updated_at   timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (projection, topic, partition)
);

-- Current state of every entity, folded from the entities topic. Deletions stay as tombstones (deleted = true)
-- carrying their version, so an older upsert that arrives late changes nothing.
CREATE TABLE entities (
  source           text        NOT NULL,
  entity_type      text        NOT NULL,
  entity_id        text        NOT NULL,
  -- <as-of ISO µs>/<observed µs>; bytewise order is version order (packages/events/src/version.ts).
  version          text        COLLATE "C" NOT NULL,
  state            jsonb,
  deleted          boolean     NOT NULL DEFAULT false,
  first_seen_at    timestamptz NOT NULL,
  last_changed_at  timestamptz NOT NULL,
  -- lineage of the event that produced the current row
  last_event_id    text        NOT NULL,
  last_event_type  text        NOT NULL,
  origin           text        NOT NULL CHECK (origin IN ('webhook', 'poll', 'command')),
  origin_id        text        NOT NULL,
  connection       text        NOT NULL,
  kafka_topic      text        NOT NULL,
  kafka_partition  integer     NOT NULL,
  kafka_offset     bigint      NOT NULL,
  PRIMARY KEY (source, entity_type, entity_id)
);
CREATE INDEX entities_recently_changed ON entities (source, entity_type, last_changed_at DESC);
