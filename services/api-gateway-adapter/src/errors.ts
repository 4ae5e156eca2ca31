import { defineErrorCodes, errorClass } from '@switchyard/events';

/**
 * Every code the adapter answers with over HTTP or writes into a command result. `retriable` says whether the same
 * command may succeed if submitted again later. The README has a row per code (a unit test keeps them in sync).
 */
export const adapterErrors = defineErrorCodes('AGW', {
  AGW_REQUEST_INVALID: {
    retriable: false,
    meaning: 'The body of POST /v1/commands is not an object of the documented shape; `field` names the problem.',
    fix: 'Send `{type, input, connection?, idempotencyKey?, correlationId?}` as JSON.',
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
    fix: 'Retry with the same idempotencyKey; check Kafka (/readyz shows the producer state).',
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
    meaning: 'The provider answered 5xx or could not be reached on every attempt.',
    fix: 'Submit again later; /metrics shows upstream statuses and the circuit state.',
  },
  AGW_UPSTREAM_TIMEOUT: {
    retriable: true,
    meaning: 'An idempotent request got no answer within COMMAND_ATTEMPT_TIMEOUT_MS on every attempt.',
    fix: 'Submit again later; raise COMMAND_ATTEMPT_TIMEOUT_MS if the provider is slow.',
  },
  AGW_UPSTREAM_OUTCOME_UNKNOWN: {
    retriable: false,
    meaning:
      'A request that is not idempotent (creating an issue) was sent but no answer arrived (timeout or dropped connection): the provider may have carried it out. It is not retried, to avoid a duplicate.',
    fix: 'Check the provider (e.g. list issues since the command time) before submitting again.',
  },
  AGW_UPSTREAM_CIRCUIT_OPEN: {
    retriable: true,
    meaning: "The connection's circuit breaker is open after repeated upstream failures, so no request was sent.",
    fix: 'Submit again after CIRCUIT_HALF_OPEN_AFTER_MS; the circuit closes when a trial request succeeds.',
  },
  AGW_UPSTREAM_BAD_RESPONSE: {
    retriable: false,
    meaning: 'The provider answered 2xx with a body that is not the expected object.',
    fix: 'Check GITHUB_API_URL points at the GitHub REST API; the message names the field that did not match.',
  },
});
export type AdapterErrorCode = keyof typeof adapterErrors;

/** An expected failure of the adapter; `details.field` (when set) names the offending field, never secrets. */
export const AdapterError = errorClass('AdapterError', adapterErrors);
export type AdapterError = InstanceType<typeof AdapterError>;
