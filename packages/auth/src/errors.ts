import { defineErrorCodes, errorClass } from '@switchyard/events';

/**
 * What every service answers when a request's credentials do not let it through. 401s carry
 * `WWW-Authenticate: Bearer`; none of them repeats the key or any part of its secret. docs/errors.md has a row
 * per code and docs/security.md the model.
 */
export const authErrors = defineErrorCodes('AUTH', {
  AUTH_MISSING: {
    retriable: false,
    http: 401,
    meaning: 'The request has no credentials: no `Authorization: Bearer <key>` header (on the stream: nor a `switchyard.bearer.<key>` subprotocol).',
    fix: 'Send an API key as `Authorization: Bearer sy_…`; `npm start` prints a development key, `switchyard-keys create` makes others.',
  },
  AUTH_MALFORMED: {
    retriable: false,
    http: 401,
    meaning: 'The `Authorization` header is not `Bearer <key>`, or the key is not of the shape `sy_<16 hex>_<43 base64url>`.',
    fix: 'Send the key exactly as it was shown when it was created, after `Bearer `.',
  },
  AUTH_KEY_UNKNOWN: {
    retriable: false,
    http: 401,
    meaning: 'No key with this id and secret exists (a wrong secret and an unknown id are answered alike).',
    fix: 'Check the key; list keys with `switchyard-keys list` or `GET /v1/keys`.',
  },
  AUTH_KEY_REVOKED: {
    retriable: false,
    http: 401,
    meaning: 'The key was revoked. Open streams of the key are closed with 4401 within a second of the revocation.',
    fix: 'Use another key; an admin can create one.',
  },
  AUTH_SCOPE_MISSING: {
    retriable: false,
    http: 403,
    meaning: 'The key is valid but lacks the scope the request needs; the message names the scope.',
    fix: 'Use a key with the named scope, or have an admin create one (scopes cannot be added to an existing key).',
  },
  AUTH_RATE_LIMITED: {
    retriable: true,
    http: 429,
    meaning: "The key has used its command budget (a token bucket: the key's `limits`, else COMMAND_RATE_PER_SECOND and COMMAND_RATE_BURST).",
    fix: 'Wait the `Retry-After` seconds and send again; `RateLimit-*` headers give the budget. Other keys are not affected.',
  },
  AUTH_KEYS_UNAVAILABLE: {
    retriable: true,
    http: 503,
    meaning: 'The service has not yet read the api-keys topic up to date (it is starting, or Kafka is unreachable), so it cannot check keys.',
    fix: 'Retry shortly; /readyz shows the `api keys` check.',
  },
  AUTH_KEY_INVALID: {
    retriable: false,
    meaning: 'A key to create is not of the documented shape (name, scopes, limits); `field` names the problem.',
    fix: 'Send `{name, scopes: [...], limits?: {commandsPerSecond, burst}}` with scopes from docs/security.md.',
  },
  AUTH_KEY_NOT_FOUND: {
    retriable: false,
    meaning: 'No key has this id.',
    fix: 'List keys with `GET /v1/keys` or `switchyard-keys list`.',
  },
});
export type AuthErrorCode = keyof typeof authErrors;

export const AuthError = errorClass('AuthError', authErrors);
export type AuthError = InstanceType<typeof AuthError>;

/**
 * The `WWW-Authenticate` challenge of a 401 (RFC 6750): `error="invalid_token"` when a credential was presented and
 * refused; none when there was none, as the RFC advises.
 */
export function bearerChallenge(error: AuthError): string {
  return error.code === 'AUTH_MISSING' ? 'Bearer realm="switchyard"' : 'Bearer realm="switchyard", error="invalid_token"';
}
