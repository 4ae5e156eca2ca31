import { defineErrorCodes, errorClass } from '@switchyard/events';
import { z } from 'zod';

/**
 * Every code the command API answers with over HTTP or writes into a command result (`error.code` of `failed` and
 * `rejected`). `retriable` says whether the same command may succeed if submitted again later; `http`, where
 * given, is the HTTP status of the answer. docs/errors.md has a row per code (a test keeps them in sync).
 */
export const commandErrors = defineErrorCodes('AGW', {
  AGW_REQUEST_INVALID: {
    retriable: false,
    meaning:
      'A request to the command API is not of the documented shape (the body of POST /v1/commands or of a batch, a query parameter, the Idempotency-Key header); `field` names the problem.',
    fix: 'Send `{type, input, connection?, idempotencyKey?, correlationId?}` as JSON; see the field named.',
  },
  AGW_IDEMPOTENCY_KEY_REUSED: {
    retriable: false,
    http: 422,
    meaning:
      'The Idempotency-Key was already used, within the idempotency window, for a different command (another type, input, connection or correlation id).',
    fix: 'Use a new key for a new command; send exactly the same body to repeat the one the key names.',
  },
  AGW_COMMAND_NOT_FOUND: {
    retriable: false,
    meaning: 'GET /v1/commands/:id names a command this adapter has not seen in the idempotency window (or ever), or one another key sent and the caller may not read all commands (the answer is the same, so ids do not leak).',
    fix: 'Check the id from the receipt; commands older than the window are in Postgres (`command_log`).',
  },
  AGW_COMMAND_TYPE_INVALID: {
    retriable: false,
    meaning: 'The command type is not in the command catalog.',
    fix: 'Use one of the types in packages/events/src/commands.ts (the message lists them).',
  },
  AGW_COMMAND_INPUT_INVALID: {
    retriable: false,
    meaning: "The command input does not match its type's input schema; `field` is the path, e.g. `input.title`.",
    fix: 'Correct the named field.',
  },
  AGW_CONNECTION_INVALID: {
    retriable: false,
    meaning: 'The command names a connection this adapter has no credentials for.',
    fix: 'Leave `connection` out (it defaults to the provider, e.g. `github`) or configure the connection.',
  },
  AGW_KAFKA_UNAVAILABLE: {
    retriable: true,
    meaning: 'The command could not be written to the commands topic in time; it may or may not have been written.',
    fix: 'Send it again with the same Idempotency-Key: if it was written, the answer is its receipt and nothing is written twice. Check Kafka (/readyz shows the producer state).',
  },
  AGW_COMMAND_EXPIRED: {
    retriable: false,
    meaning: 'The command is older than COMMAND_MAX_AGE_MS when the adapter reads it, so it was not carried out.',
    fix: 'Submit a new command if the change is still wanted. (Old commands are refused so that replaying the topic cannot repeat side effects.)',
  },
  AGW_COMMAND_UNSUPPORTED: {
    retriable: false,
    meaning: 'The catalog says the adapter carries out this command type, but this build of the adapter does not implement it.',
    fix: 'Deploy an adapter version that implements the type, then submit the command again.',
  },
  AGW_UPSTREAM_VALIDATION_FAILED: {
    retriable: false,
    meaning: "The provider refused the request as invalid (GitHub 422); `field` is the provider's field as a command path.",
    fix: 'Correct the named field (for example, only assign users who have access to the repository).',
  },
  AGW_UPSTREAM_UNAUTHORIZED: {
    retriable: false,
    meaning: 'The provider did not accept the credentials (GitHub 401 Bad credentials).',
    fix: "Check the connection's token (GITHUB_TOKEN); it may be expired or revoked.",
  },
  AGW_UPSTREAM_FORBIDDEN: {
    retriable: false,
    meaning: 'The provider refused the request for lack of permission (GitHub 403 without a rate limit).',
    fix: 'Grant the token the needed scope or repository access.',
  },
  AGW_UPSTREAM_NOT_FOUND: {
    retriable: false,
    meaning: 'The repository or issue does not exist, or the token cannot see it (GitHub answers 404 to both).',
    fix: 'Check owner, repo and number, and that the token has access to the repository.',
  },
  AGW_UPSTREAM_REJECTED: {
    retriable: false,
    meaning: 'The provider refused the request with another client error (400, 409, 410, …).',
    fix: "The message carries the provider's reason.",
  },
  AGW_UPSTREAM_RATE_LIMITED: {
    retriable: true,
    meaning:
      'The provider rate-limited the connection (403/429 with x-ratelimit-remaining 0 or retry-after, or a secondary limit) and the wait it asked for was longer than COMMAND_RETRY_MAX_DELAY_MS, or attempts ran out.',
    fix: 'Submit again after the time in the message; spread commands out.',
  },
  AGW_UPSTREAM_UNAVAILABLE: {
    retriable: true,
    meaning: 'The provider answered 5xx or could not be reached on every attempt (for a write the provider cannot repeat safely: and the adapter made sure it had not been carried out).',
    fix: 'Submit again later; /metrics shows upstream statuses and the circuit state.',
  },
  AGW_UPSTREAM_TIMEOUT: {
    retriable: true,
    meaning: 'A request got no answer within COMMAND_ATTEMPT_TIMEOUT_MS on every attempt (for a write the provider cannot repeat safely: and the adapter made sure it had not been carried out).',
    fix: 'Submit again later; raise COMMAND_ATTEMPT_TIMEOUT_MS if the provider is slow.',
  },
  AGW_UPSTREAM_OUTCOME_UNKNOWN: {
    retriable: false,
    meaning:
      "A write the provider cannot repeat safely (creating an issue) may have reached it, and the command's deadline (COMMAND_DEADLINE_MS) passed before the adapter could find out whether it was carried out: the lookup for it kept failing.",
    fix: 'Check the provider for the command id (GitHub: the issue body carries `switchyard:command <id>`) before submitting again.',
  },
  AGW_UPSTREAM_CIRCUIT_OPEN: {
    retriable: true,
    meaning: "The connection's circuit breaker is open after repeated upstream failures, so no request was sent.",
    fix: 'Submit again after CIRCUIT_HALF_OPEN_AFTER_MS; the circuit closes when a trial request succeeds.',
  },
  AGW_UPSTREAM_BAD_RESPONSE: {
    retriable: false,
    meaning: 'The provider answered 2xx with a body that is not the expected object.',
    fix: "Check the connection's base URL (GITHUB_API_URL) points at the provider's API; the message names the field that did not match.",
  },
});
export type CommandErrorCode = keyof typeof commandErrors;

/** An expected failure of the command API or of carrying a command out; `details.field` names the offending field. */
export const CommandApiError = errorClass('CommandApiError', commandErrors);
export type CommandApiError = InstanceType<typeof CommandApiError>;

/** Every HTTP error answer of every Switchyard service: `{"error": {code, message, field?, retriable}}`. */
export const ErrorBody = z.object({
  error: z.object({
    code: z.string().min(1),
    message: z.string(),
    field: z.string().optional(),
    retriable: z.boolean(),
  }),
});
export type ErrorBody = z.infer<typeof ErrorBody>;
