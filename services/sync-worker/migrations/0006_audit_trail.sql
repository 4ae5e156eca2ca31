-- Audit trail: who asked for each command and who caused each entity's current state, from the CloudEvents Auth
-- Context (`authtype`, `authid`) events carry. A command taken over HTTP carries `api_key` and the key's id (never
-- the key), and its results and entity events repeat both; a command produced straight to Kafka carries what its
-- producer set, often nothing (NULL here).

-- The command's Auth Context (or, while the command itself is not projected, the one its results repeat). Once set
-- it is never replaced by NULL.
ALTER TABLE command_log ADD COLUMN auth_type text, ADD COLUMN auth_id text;
-- Everything one key asked for, in order.
CREATE INDEX command_log_auth ON command_log (auth_id, requested_at) WHERE auth_id IS NOT NULL;

-- The Auth Context of the entity event that produced the current row (NULL for a webhook, a poll, or a change no
-- principal is named for).
ALTER TABLE entities ADD COLUMN changed_by_type text, ADD COLUMN changed_by text;

-- The typed views also say who changed each row (new columns go last: CREATE OR REPLACE VIEW keeps the others).

CREATE OR REPLACE VIEW github_issues AS
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
  entity_id, version, origin, last_changed_at, state AS raw, changed_by_type, changed_by
FROM entities
WHERE source = 'github' AND entity_type = 'issue' AND NOT deleted;

CREATE OR REPLACE VIEW stripe_customers AS
SELECT
  entity_id                                     AS id,
  state ->> 'email'                             AS email,
  state ->> 'name'                              AS name,
  state ->> 'description'                       AS description,
  (state ->> 'livemode')::boolean               AS livemode,
  state -> 'metadata'                           AS metadata,
  to_timestamp((state ->> 'created')::bigint)   AS created,
  version, origin, last_changed_at, state AS raw, changed_by_type, changed_by
FROM entities
WHERE source = 'stripe' AND entity_type = 'customer' AND NOT deleted;

CREATE OR REPLACE VIEW stripe_payment_intents AS
SELECT
  entity_id                                     AS id,
  (state ->> 'amount')::bigint                  AS amount,
  state ->> 'currency'                          AS currency,
  state ->> 'status'                            AS status,
  state ->> 'customer'                          AS customer,
  (state ->> 'livemode')::boolean               AS livemode,
  state -> 'metadata'                           AS metadata,
  to_timestamp((state ->> 'created')::bigint)   AS created,
  version, origin, last_changed_at, state AS raw, changed_by_type, changed_by
FROM entities
WHERE source = 'stripe' AND entity_type = 'payment_intent' AND NOT deleted;

CREATE OR REPLACE VIEW slack_messages AS
SELECT
  state ->> 'channel'                           AS channel,
  state ->> 'ts'                                AS ts,
  state ->> 'thread_ts'                         AS thread_ts,
  state ->> 'user'                              AS "user",
  state ->> 'text'                              AS text,
  state ->> 'subtype'                           AS subtype,
  state -> 'edited' ->> 'ts'                    AS edited_ts,
  to_timestamp((state ->> 'ts')::double precision) AS posted_at,
  entity_id, version, origin, last_changed_at, state AS raw, changed_by_type, changed_by
FROM entities
WHERE source = 'slack' AND entity_type = 'message' AND NOT deleted;
