-- Casting text to timestamptz is only STABLE in general (it reads TimeZone for inputs without an offset). Every
-- timestamp our schemas accept carries an explicit offset or Z, so for our data the cast is immutable, which lets
-- the typed views below be served by expression indexes.
CREATE FUNCTION switchyard_ts(text) RETURNS timestamptz
  LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT
  AS $$ SELECT $1::timestamptz $$;

-- Typed views over the entities table: real columns for the fields people filter on, deleted entities left out
-- (the entities table keeps their tombstones). Each filtered column has an index on the same expression.

CREATE VIEW github_issues AS
SELECT
  split_part(entity_id, '#', 1)                 AS repository,
  (state ->> 'number')::integer                 AS number,
  (state ->> 'id')::bigint                      AS github_id,
  state ->> 'title'                             AS title,
  state ->> 'state'                             AS state,
  state ->> 'state_reason'                      AS state_reason,
  state ->> 'body'                              AS body,
  state -> 'user' ->> 'login'                   AS author,
  ARRAY(SELECT jsonb_array_elements(state -> 'labels') ->> 'name') AS labels,
  (state ->> 'comments')::integer               AS comments,
  state ->> 'html_url'                          AS html_url,
  switchyard_ts(state ->> 'created_at')         AS created_at,
  switchyard_ts(state ->> 'updated_at')         AS updated_at,
  switchyard_ts(state ->> 'closed_at')          AS closed_at,
  entity_id, version, origin, last_changed_at, state AS raw
FROM entities
WHERE source = 'github' AND entity_type = 'issue' AND NOT deleted;

CREATE INDEX github_issues_repository_state ON entities (split_part(entity_id, '#', 1), (state ->> 'state'))
  WHERE source = 'github' AND entity_type = 'issue';
CREATE INDEX github_issues_updated_at ON entities (switchyard_ts(state ->> 'updated_at'))
  WHERE source = 'github' AND entity_type = 'issue';
CREATE INDEX github_issues_labels ON entities USING gin ((state -> 'labels') jsonb_path_ops)
  WHERE source = 'github' AND entity_type = 'issue';

CREATE VIEW stripe_customers AS
SELECT
  entity_id                                     AS id,
  state ->> 'email'                             AS email,
  state ->> 'name'                              AS name,
  state ->> 'description'                       AS description,
  (state ->> 'livemode')::boolean               AS livemode,
  state -> 'metadata'                           AS metadata,
  to_timestamp((state ->> 'created')::bigint)   AS created,
  version, origin, last_changed_at, state AS raw
FROM entities
WHERE source = 'stripe' AND entity_type = 'customer' AND NOT deleted;

CREATE INDEX stripe_customers_email ON entities ((state ->> 'email'))
  WHERE source = 'stripe' AND entity_type = 'customer';
CREATE INDEX stripe_customers_created ON entities (to_timestamp((state ->> 'created')::bigint))
  WHERE source = 'stripe' AND entity_type = 'customer';

CREATE VIEW stripe_payment_intents AS
SELECT
  entity_id                                     AS id,
  (state ->> 'amount')::bigint                  AS amount,
  state ->> 'currency'                          AS currency,
  state ->> 'status'                            AS status,
  state ->> 'customer'                          AS customer,
  (state ->> 'livemode')::boolean               AS livemode,
  state -> 'metadata'                           AS metadata,
  to_timestamp((state ->> 'created')::bigint)   AS created,
  version, origin, last_changed_at, state AS raw
FROM entities
WHERE source = 'stripe' AND entity_type = 'payment_intent' AND NOT deleted;

CREATE INDEX stripe_payment_intents_status ON entities ((state ->> 'status'), to_timestamp((state ->> 'created')::bigint))
  WHERE source = 'stripe' AND entity_type = 'payment_intent';
CREATE INDEX stripe_payment_intents_customer ON entities ((state ->> 'customer'))
  WHERE source = 'stripe' AND entity_type = 'payment_intent';

CREATE VIEW slack_messages AS
SELECT
  state ->> 'channel'                           AS channel,
  state ->> 'ts'                                AS ts,
  state ->> 'thread_ts'                         AS thread_ts,
  state ->> 'user'                              AS "user",
  state ->> 'text'                              AS text,
  state ->> 'subtype'                           AS subtype,
  state -> 'edited' ->> 'ts'                    AS edited_ts,
  to_timestamp((state ->> 'ts')::double precision) AS posted_at,
  entity_id, version, origin, last_changed_at, state AS raw
FROM entities
WHERE source = 'slack' AND entity_type = 'message' AND NOT deleted;

CREATE INDEX slack_messages_channel_ts ON entities ((state ->> 'channel'), (state ->> 'ts'))
  WHERE source = 'slack' AND entity_type = 'message';
CREATE INDEX slack_messages_thread ON entities ((state ->> 'thread_ts'))
  WHERE source = 'slack' AND entity_type = 'message' AND state ? 'thread_ts';
